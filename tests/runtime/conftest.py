"""Fixtures for the runtime tests: a private runtime root holding a busybox image, and a `dy`
runner for the `dockyard` CLI. Every container a test leaves behind is force-removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require, require_busybox, require_tool
from tests.runtime.images import busybox_layer, seed

IMAGE = "test/busybox:latest"


def require_tini() -> None:
    """--init runs Debian's static tini."""
    from runtime.rootfs import INIT_BINARY

    require(Path(INIT_BINARY).is_file(), f"{INIT_BINARY} is not there (apt-get install tini)")


@dataclass
class Dockyard:
    root: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKYARD_RUNTIME_ROOT": str(self.root)}

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "dockyard", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"dockyard {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def run(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self("run", "--rm", *args, **kwargs)  # type: ignore[arg-type]

    def cleanup(self) -> None:
        ids = self("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            self("rm", "-f", *ids)


@pytest.fixture
def dy(whiteout_tmp_path: Path) -> Iterator[Dockyard]:
    require(sys.platform == "linux", "needs Linux")
    require_busybox()
    # Image layers hold whiteout devices, which a container's overlayfs root cannot (see whiteout_tmp_path).
    root = whiteout_tmp_path / "runtime"
    seed(root, IMAGE, [busybox_layer()])
    dockyard = Dockyard(root)
    yield dockyard
    dockyard.cleanup()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def net(dy: Dockyard) -> Iterator[Dockyard]:
    """A runtime whose user networks are removed after the test (bridges in their namespaces)."""
    require_tool("ip", "iproute2")
    require_tool("nsenter", "util-linux")
    yield dy
    dy.cleanup()
    names = dy("network", "ls", "-q", "--filter", "type=custom").stdout.split()
    if names:
        dy("network", "rm", *names)
