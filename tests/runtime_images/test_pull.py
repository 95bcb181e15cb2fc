"""`dockyard pull` and the image commands as real processes, against real registries on loopback (CNCF
distribution and Dockyard), with images built from a static busybox and pushed by skopeo."""

from __future__ import annotations

import functools
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from runtime.images import ImageStore
from runtime.layers import OPAQUE_XATTR, is_whiteout_device
from tests.imagebuild import (
    Image,
    ImageSpec,
    Layer,
    busybox_entries,
    directory,
    file,
    layer,
    opaque,
    push,
    sha256,
    whiteout,
    write_layout,
)
from tests.runtime_images.conftest import Cli, Registry

pytestmark = [pytest.mark.e2e, pytest.mark.privileged]

FILES = layer(
    [directory("srv"), file("srv/old1", b"1"), directory("srv/sub"), file("srv/sub/old2", b"2"), file("etc/hosts")]
)
CHANGES = layer(
    [
        directory("etc"),
        file("etc/motd", b"layer three\n"),
        whiteout("etc/hosts"),
        whiteout("bin/vi"),
        directory("srv"),
        opaque("srv"),
        file("srv/new", b"new"),
    ]
)
OTHER = layer([directory("etc"), file("etc/other", b"other image\n")])


# Built on first use, not at import: without busybox-static the tests skip instead of failing to collect.
@functools.cache
def base() -> Layer:
    return layer(busybox_entries())


def spec_a() -> ImageSpec:
    return ImageSpec([base(), FILES, CHANGES], config={"Cmd": ["cat", "/etc/motd"]})


def spec_b() -> ImageSpec:
    return ImageSpec([base(), OTHER])


def _publish(tmp_path: Path, registry: Registry, spec: ImageSpec, repo_tag: str) -> tuple[Image, str]:
    layout = tmp_path / "layout"
    tag = repo_tag.rpartition(":")[2]
    image = write_layout(layout, spec, tag=tag)
    ref = f"{registry.address}/{repo_tag}"
    push(layout, tag, ref)
    return image, ref


def _lines(output: str, status: str) -> list[str]:
    return [line.partition(":")[0] for line in output.splitlines() if line.endswith(f": {status}")]


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]


def _mount_overlay(lowers: list[Path], target: Path) -> bool:
    target.mkdir()
    lowerdir = ":".join(str(p) for p in reversed(lowers))
    result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lowerdir}", str(target)])
    return result.returncode == 0


def test_pull_unpacks_verifies_and_shares_layers(tmp_path: Path, registry: Registry, dockyard: Cli) -> None:
    image_a, ref_a = _publish(tmp_path, registry, spec_a(), "demo/a:v1")
    _, ref_b = _publish(tmp_path, registry, spec_b(), "demo/b:v1")

    out = dockyard("pull", ref_a).stdout
    assert "v1: Pulling from demo/a" in out
    assert sorted(_lines(out, "Pull complete")) == sorted(_short(la.digest) for la in spec_a().layers)
    assert f"Digest: {image_a.manifest_digest}" in out
    assert f"Status: Downloaded newer image for {ref_a}" in out
    assert out.splitlines()[-1] == ref_a

    store = ImageStore(dockyard.root)
    local = store.resolve(ref_a)
    assert local is not None
    assert (local.id, local.manifest_digest) == (image_a.id, image_a.manifest_digest)
    assert local.layer_dirs == [store.layer_dir(d) for d in image_a.diff_ids]
    assert local.config["config"]["Cmd"] == ["cat", "/etc/motd"]
    base_dir, _, top_dir = local.layer_dirs
    assert stat.S_IMODE((base_dir / "bin/busybox").stat().st_mode) == 0o755
    assert os.readlink(base_dir / "bin/sh") == "busybox"
    assert stat.S_IMODE((base_dir / "tmp").stat().st_mode) == 0o1777
    assert is_whiteout_device((top_dir / "bin/vi").lstat())
    assert is_whiteout_device((top_dir / "etc/hosts").lstat())
    assert os.getxattr(top_dir / "srv", OPAQUE_XATTR) == b"y"

    # Stacked by overlayfs, the layers show what the image means.
    merged = tmp_path / "merged"
    if _mount_overlay(local.layer_dirs, merged):
        try:
            assert not (merged / "bin/vi").exists() and (merged / "bin/ls").exists()
            assert not (merged / "etc/hosts").exists()
            assert (merged / "etc/motd").read_text() == "layer three\n"
            assert sorted(os.listdir(merged / "srv")) == ["new"]
        finally:
            subprocess.run(["umount", str(merged)], check=True)

    # A second image that shares the base layer reuses its unpacked directory.
    out = dockyard("pull", ref_b).stdout
    assert _lines(out, "Already exists") == [_short(base().digest)]
    assert _lines(out, "Pull complete") == [_short(OTHER.digest)]
    local_b = store.resolve(ref_b)
    assert local_b is not None and local_b.layer_dirs[0] == base_dir
    assert len(list((store.base / "layers/sha256").iterdir())) == 4

    # Pulling again downloads no layer: with their bytes gone from the registry it still succeeds.
    for la in spec_a().layers:
        registry.blob_data(la.digest).unlink()
    out = dockyard("pull", ref_a).stdout
    assert sorted(_lines(out, "Already exists")) == sorted(_short(la.digest) for la in spec_a().layers)
    assert f"Status: Image is up to date for {ref_a}" in out
    assert list((store.base / "tmp").iterdir()) == []


def test_multi_platform_index(tmp_path: Path, registry: Registry, dockyard: Cli) -> None:
    arm = ImageSpec([base(), layer([file("etc/arch", b"arm64\n")])], architecture="arm64", variant="v8")
    amd = ImageSpec([base(), layer([file("etc/arch", b"amd64\n")])], architecture="amd64")
    layout = tmp_path / "layout"
    image = write_layout(layout, [arm, amd], tag="multi")
    assert image.index is not None
    ref = f"{registry.address}/demo/multi:v1"
    push(layout, "multi", ref, multi=True)
    store = ImageStore(dockyard.root)

    out = dockyard("pull", ref).stdout
    assert f"Digest: {sha256(image.index)}" in out
    local = store.resolve(ref)
    assert local is not None and local.config["architecture"] == "amd64"
    assert (local.layer_dirs[-1] / "etc/arch").read_text() == "amd64\n"

    dockyard("pull", "--platform", "linux/arm64", ref)
    local = store.resolve(ref)
    assert local is not None and local.config["architecture"] == "arm64"
    assert (local.layer_dirs[-1] / "etc/arch").read_text() == "arm64\n"
    assert store.resolve(f"{registry.address}/demo/multi@{sha256(image.index)}") is not None

    failed = dockyard("pull", "--platform", "linux/s390x", ref, check=False)
    assert failed.returncode == 1
    assert "no image for platform linux/s390x" in failed.stderr
    assert "linux/amd64" in failed.stderr and "linux/arm64/v8" in failed.stderr


def test_single_manifest_of_another_platform_is_refused_when_asked(
    tmp_path: Path, registry: Registry, dockyard: Cli
) -> None:
    _, ref = _publish(tmp_path, registry, spec_b(), "demo/b:v1")
    failed = dockyard("pull", "--platform", "linux/arm64", ref, check=False)
    assert failed.returncode == 1 and "does not match the requested linux/arm64" in failed.stderr


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _assert_nothing_stored(store: ImageStore, dockyard: Cli) -> None:
    assert dockyard("images", "-q").stdout == ""
    assert list((store.base / "tmp").iterdir()) == []


def test_tampered_layer_is_refused(tmp_path: Path, registry: Registry, dockyard: Cli) -> None:
    _, ref = _publish(tmp_path, registry, spec_a(), "demo/a:v1")
    _flip_middle_byte(registry.blob_data(CHANGES.digest))
    failed = dockyard("pull", ref, check=False)
    assert failed.returncode == 1
    assert f"digest mismatch: expected {CHANGES.digest}" in failed.stderr
    store = ImageStore(dockyard.root)
    assert not store.has_layer(CHANGES.diff_id)
    _assert_nothing_stored(store, dockyard)


def test_tampered_manifest_is_refused(tmp_path: Path, registry: Registry, dockyard: Cli) -> None:
    image, ref = _publish(tmp_path, registry, spec_b(), "demo/b:v1")
    manifest = registry.blob_data(image.manifest_digest)
    manifest.write_bytes(manifest.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion": 2'))
    registry.restart()  # a registry may serve manifests from memory; the stored bytes are what is under test
    for target in (ref, ref.rpartition(":")[0] + "@" + image.manifest_digest):
        failed = dockyard("pull", target, check=False)
        assert failed.returncode == 1, failed.stdout
        assert "digest mismatch" in failed.stderr
    _assert_nothing_stored(ImageStore(dockyard.root), dockyard)


def test_layer_that_does_not_match_its_diff_id_is_refused(tmp_path: Path, registry: Registry, dockyard: Cli) -> None:
    lying = Layer(OTHER.blob, sha256(b"something else"), OTHER.media_type)
    _, ref = _publish(tmp_path, registry, ImageSpec([base(), lying]), "demo/lying:v1")
    failed = dockyard("pull", ref, check=False)
    assert failed.returncode == 1
    assert f"unpacks to {OTHER.diff_id}, but the image config says {lying.diff_id}" in failed.stderr
    store = ImageStore(dockyard.root)
    assert not store.has_layer(lying.diff_id) and not store.has_layer(OTHER.diff_id)
    _assert_nothing_stored(store, dockyard)


def test_path_traversal_layer_is_refused(tmp_path: Path, registry: Registry, dockyard: Cli) -> None:
    evil = layer([file("../../../../tmp/dockyard-escape", b"x")])
    _, ref = _publish(tmp_path, registry, ImageSpec([base(), evil]), "demo/evil:v1")
    failed = dockyard("pull", ref, check=False)
    assert failed.returncode == 1 and "escapes the root" in failed.stderr
    assert not Path("/tmp/dockyard-escape").exists()
    _assert_nothing_stored(ImageStore(dockyard.root), dockyard)


def test_images_history_rmi_prune(tmp_path: Path, registry: Registry, dockyard: Cli) -> None:
    image_a, ref_a = _publish(tmp_path, registry, spec_a(), "demo/a:v1")
    image_b, ref_b = _publish(tmp_path, registry, spec_b(), "demo/b:v1")
    dockyard("pull", "-q", ref_a)
    dockyard("pull", "-q", ref_b)
    store = ImageStore(dockyard.root)

    listing = dockyard("images").stdout.splitlines()
    assert listing[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    rows = {line.split()[0]: line.split() for line in listing[1:]}
    assert rows[f"{registry.address}/demo/a"][1:3] == ["v1", _short(image_a.id)]
    assert rows[f"{registry.address}/demo/b"][1:3] == ["v1", _short(image_b.id)]
    assert sorted(dockyard("images", "-q").stdout.split()) == sorted([_short(image_a.id), _short(image_b.id)])
    assert dockyard("images", "-q", f"{registry.address}/demo/b").stdout.split() == [_short(image_b.id)]

    history = dockyard("history", ref_a).stdout.splitlines()
    assert history[0].split()[:2] == ["IMAGE", "CREATED"]
    assert len(history) == 1 + len(spec_a().layers)
    assert history[1].startswith(_short(image_a.id)) and history[2].startswith("<missing>")
    assert "layer 2" in history[1] and "layer 0" in history[3]
    assert dockyard("history", "-q", "--no-trunc", _short(image_a.id)).stdout.split()[0] == image_a.id

    inspected = json.loads(dockyard("image", "inspect", ref_a).stdout)
    assert inspected[0]["Id"] == image_a.id and inspected[0]["RepoTags"] == [ref_a]

    out = dockyard("rmi", ref_a).stdout.splitlines()
    assert out[0] == f"Untagged: {ref_a}"
    assert f"Deleted: {image_a.id}" in out and f"Deleted: {CHANGES.diff_id}" in out
    assert f"Deleted: {base().diff_id}" not in out
    assert store.has_layer(base().diff_id) and not store.has_layer(FILES.diff_id)
    assert dockyard("images", "-q").stdout.split() == [_short(image_b.id)]

    missing = dockyard("rmi", ref_a, check=False)
    assert missing.returncode == 1 and "No such image" in missing.stderr

    # A dangling image (its tag moved by a later pull) is what prune collects.
    _publish(tmp_path, registry, ImageSpec([base(), FILES]), "demo/b:v1")
    dockyard("pull", "-q", ref_b)
    assert store.has_layer(OTHER.diff_id)
    pruned = dockyard("image", "prune", "-f").stdout
    assert OTHER.diff_id in pruned and "Total reclaimed space:" in pruned
    assert not store.has_layer(OTHER.diff_id) and store.has_layer(base().diff_id)

    dockyard("rmi", ref_b)
    assert dockyard("images", "-q").stdout == ""
    assert list((store.base / "layers/sha256").iterdir()) == []
    assert list((store.base / "blobs/sha256").iterdir()) == []


def test_progress_bars_on_a_terminal(tmp_path: Path, registry: Registry, dockyard: Cli) -> None:
    import pty

    _, ref = _publish(tmp_path, registry, spec_b(), "demo/b:v1")
    main, secondary = pty.openpty()
    env = {**os.environ, "DOCKYARD_RUNTIME_ROOT": str(dockyard.root), "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen(
        [os.sys.executable, "-m", "dockyard", "pull", ref],  # type: ignore[attr-defined]
        stdout=secondary,
        stderr=secondary,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(60) == 0
    os.close(main)
    output = b"".join(chunks).decode(errors="replace")
    assert "━" in output  # rich's bar
    assert _short(base().digest) in output and "Pull complete" in output
    assert f"Status: Downloaded newer image for {ref}" in output


def test_ensure_image_pulls_once_and_wraps_failures(
    tmp_path: Path, registry: Registry, dockyard: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.ensure import ensure_image
    from runtime.images import ImageError

    image, ref = _publish(tmp_path, registry, spec_b(), "demo/b:v1")
    store = ImageStore(dockyard.root)
    first = ensure_image(store, ref)
    assert first.id == image.id
    assert "Unable to find image" in capsys.readouterr().err
    registry.stop()  # the second call must not need the registry
    assert ensure_image(store, ref).id == image.id
    for bad in (ref.replace("demo/b", "demo/missing"), "UPPER/Case:v1", f"{registry.address}/demo/b:v1@sha256:xyz"):
        with pytest.raises(ImageError):
            ensure_image(store, bad)
