"""The container's filesystem (issue 5, points 2 and 6): overlay with whiteouts, the copy fallback,
bind mounts, named volumes and read-only roots."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import syscalls
from tests import imagebuild
from tests.runtime.conftest import IMAGE, Dockyard
from tests.runtime.images import busybox_layer, seed

pytestmark = pytest.mark.privileged


def test_whiteouts_hide_lower_files(dy: Dockyard) -> None:
    lower = busybox_layer(
        [
            imagebuild.directory("data"),
            imagebuild.file("data/kept", b"kept\n"),
            imagebuild.file("data/deleted", b"x"),
            imagebuild.directory("opaque"),
            imagebuild.file("opaque/old", b"x"),
        ]
    )
    upper = imagebuild.layer(
        [
            imagebuild.whiteout("data/deleted"),
            imagebuild.whiteout("bin/wget"),
            imagebuild.directory("opaque"),
            imagebuild.opaque("opaque"),
            imagebuild.file("opaque/new", b"new\n"),
        ]
    )
    seed(dy.root, "test/whiteouts:1", [lower, upper])
    r = dy.run("test/whiteouts:1", "sh", "-c", "ls /data; ls /opaque; ls /bin/wget 2>&1 || true", check=True)
    assert r.stdout.split() == ["kept", "new", "ls:", "/bin/wget:", "No", "such", "file", "or", "directory"]


def test_bind_mounts_and_readonly(dy: Dockyard, tmp_path: Path) -> None:
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in").write_text("from host\n")
    r = dy.run(
        "-v",
        f"{host}:/mnt/rw",
        "--mount",
        f"type=bind,source={host},target=/mnt/ro,readonly",
        IMAGE,
        "sh",
        "-c",
        "cat /mnt/rw/in; echo written > /mnt/rw/out; echo x > /mnt/ro/nope || echo refused",
    )
    assert r.stdout.split("\n")[:2] == ["from host", "refused"]
    assert "Read-only file system" in r.stderr
    assert (host / "out").read_text() == "written\n"
    assert not (host / "nope").exists()
    r = dy.run("-v", f"{host}:/data:ro", IMAGE, "sh", "-c", "touch /data/x")
    assert r.returncode != 0 and not (host / "x").exists()


def test_named_volume_survives_container(dy: Dockyard) -> None:
    dy.run("-v", "appdata:/var/lib/app", IMAGE, "sh", "-c", "echo persisted > /var/lib/app/file", check=True)
    assert "appdata" in dy("volume", "ls", check=True).stdout
    assert dy.run("-v", "appdata:/srv", IMAGE, "cat", "/srv/file").stdout == "persisted\n"
    dy("run", "--name", "holder", "-v", "appdata:/x", IMAGE, "true", check=True)
    assert dy("volume", "rm", "appdata").returncode != 0  # in use by a container, even a stopped one
    dy("rm", "holder", check=True)
    dy("volume", "rm", "appdata", check=True)
    assert "appdata" not in dy("volume", "ls").stdout


def test_new_named_volume_starts_with_image_content(dy: Dockyard) -> None:
    r = dy.run(
        "-v",
        "etcvol:/etc",
        "-h",
        "volhost",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/passwd | head -1; cat /etc/hostname; echo added > /etc/added",
    )
    assert r.stdout.split("\n")[1] == "volhost"  # /etc/hostname is bound on top of the volume
    assert r.stdout.startswith("root:x:0:0:")
    # Only an empty volume is filled: later containers see the volume's own content.
    r = dy.run("-v", "etcvol:/etc", IMAGE, "cat", "/etc/added")
    assert r.stdout == "added\n"
    r = dy.run("-v", "etcvol:/mnt", IMAGE, "ls", "/mnt")
    assert "passwd" in r.stdout.split()


def test_read_only_rootfs(dy: Dockyard) -> None:
    r = dy.run("--read-only", IMAGE, "sh", "-c", "touch /etc/x || echo refused; echo ok > /dev/shm/x && cat /dev/shm/x")
    assert r.stdout.split() == ["refused", "ok"]


@pytest.fixture
def nested_root(whiteout_tmp_path: Path) -> Iterator[Path]:
    """A runtime root on an overlayfs, where a second overlay cannot use its upper directory. Its own upper
    directory cannot be on an overlayfs either: `whiteout_tmp_path` is not."""
    base = whiteout_tmp_path / "nested"
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir(parents=True)
    syscalls.mount(
        "overlay", base / "merged", "overlay", 0, f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work"
    )
    yield base / "merged"
    subprocess.run(["umount", "-l", str(base / "merged")], check=False)


def test_copy_fallback_when_overlay_fails(dy: Dockyard, nested_root: Path) -> None:
    nested = Dockyard(nested_root / "runtime")
    seed(nested.root, IMAGE, [busybox_layer()])
    try:
        r = nested("run", "--name", "copied", IMAGE, "sh", "-c", "echo ok > /etc/new; cat /etc/new; ls /bin/sh")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["ok", "/bin/sh"]
        assert "private copy" in r.stderr
        assert nested.run(IMAGE, "ls", "/etc/new").returncode != 0  # the copy is the container's own
    finally:
        nested.cleanup()
