"""Shared fixtures. End-to-end pieces skip with a reason when a tool is missing, and fail instead
when DOCKYARD_E2E=required (as in CI)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.servers import DockerEngine

E2E_REQUIRED = os.environ.get("DOCKYARD_E2E") == "required"


def require(condition: bool, reason: str) -> None:
    """Skip (or, under DOCKYARD_E2E=required, fail) unless `condition` holds."""
    if condition:
        return
    if E2E_REQUIRED:
        pytest.fail(f"required for the end-to-end suite: {reason}", pytrace=False)
    pytest.skip(reason)


# The Debian package that installs each tool the tests drive, named in the skip a missing tool causes.
DEBIAN_PACKAGES = {
    "bpftool": "bpftool",
    "busybox": "busybox-static",  # the images the tests build are FROM scratch: the binary must be static
    "chromium": "chromium",
    "curl": "curl",
    "debootstrap": "debootstrap",
    "docker": "docker.io",
    "docker-compose": "docker-compose",
    "docker-registry": "docker-registry",
    "dockerd": "docker.io",
    "fuse-overlayfs": "fuse-overlayfs",
    "gcc": "gcc",
    "htpasswd": "apache2-utils",
    "ip": "iproute2",
    "jq": "jq",
    "newuidmap": "uidmap",
    "nsenter": "util-linux",
    "podman": "podman",
    "runc": "runc",
    "skopeo": "skopeo",
    "systemd-analyze": "systemd",
    "tini": "tini",
    "umoci": "umoci",
    "wrk": "wrk",
}

BUSYBOX = Path("/bin/busybox")


def require_tool(name: str, package: str | None = None) -> str:
    """The path of `name`; skip (naming the Debian package that installs it) when it is missing."""
    path = shutil.which(name)
    package = package or DEBIAN_PACKAGES.get(name, name)
    require(path is not None, f"{name} is not installed (apt-get install {package})")
    assert path is not None
    return path


def require_busybox() -> Path:
    """Debian's static busybox, which the test images are built from."""
    require(BUSYBOX.is_file(), f"{BUSYBOX} is not there (apt-get install {DEBIAN_PACKAGES['busybox']})")
    return BUSYBOX


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (run the suite as root)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under DOCKYARD_E2E=required an end-to-end or privileged test may not be skipped."""
    outcome = yield
    report = outcome.get_result()
    if E2E_REQUIRED and report.skipped and not hasattr(report, "wasxfail"):
        if item.get_closest_marker("e2e") or item.get_closest_marker("privileged"):
            report.outcome = "failed"
            report.longrepr = f"end-to-end test skipped under DOCKYARD_E2E=required: {report.longrepr}"


def whiteouts_work(directory: Path) -> bool:
    """Whether overlay whiteouts can be made here: a 0:0 character device and a trusted.* xattr. Root on an
    overlayfs (a container's root) or without CAP_MKNOD cannot."""
    probe = directory / ".whiteout-probe"
    try:
        os.mknod(probe, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        probe.unlink()
        probe.mkdir()
        os.setxattr(probe, "trusted.overlay.opaque", b"y")
        probe.rmdir()
    except OSError:
        if probe.is_dir():
            probe.rmdir()
        elif probe.exists() or probe.is_symlink():
            probe.unlink()
        return False
    return True


@pytest.fixture
def whiteout_tmp_path(tmp_path: Path) -> Iterator[Path]:
    """A temporary directory where overlay whiteouts can be made: `tmp_path` itself, or a tmpfs mounted on it
    when `tmp_path` is on a filesystem that refuses them."""
    require_root()
    if whiteouts_work(tmp_path):
        yield tmp_path
        return
    target = tmp_path / "tmpfs"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(target)], capture_output=True)
    require(mounted.returncode == 0, f"no whiteouts in {tmp_path}, nor a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        require(whiteouts_work(target), "whiteout devices cannot be made even on a tmpfs: needs CAP_MKNOD")
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    require_root()
    require_tool("dockerd")
    require_tool("docker")
    from tests.servers import start_dockerd  # tests.servers imports this module

    engine = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    yield engine
    engine.stop()
