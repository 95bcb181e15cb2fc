"""Registries on loopback for pull tests (CNCF distribution's `docker-registry`, and Dockyard itself), and the
`dockyard` command run as a real process against a private runtime root."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_tool
from tests.servers import ROOT, free_port, start_registry, wait_for


@dataclass
class Registry:
    kind: str
    address: str
    storage: Path
    process: subprocess.Popen[bytes]
    log: Path
    starter: Callable[[], Registry] | None = field(default=None, repr=False)

    def blob_data(self, digest: str) -> Path:
        """Where both distribution and Dockyard keep a blob's bytes (the same key layout)."""
        hexpart = digest.partition(":")[2]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"

    def restart(self) -> None:
        """Stop and start again on the same storage and port, dropping whatever the server cached."""
        assert self.starter is not None
        self.stop()
        fresh = self.starter()
        self.address, self.process, self.log = fresh.address, fresh.process, fresh.log

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_distribution(base: Path, htpasswd: Path | None = None, port: int | None = None) -> Registry:
    binary = require_tool("docker-registry")
    port = port or free_port()
    storage = base / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n" if htpasswd else ""
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = base / "distribution.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    registry = Registry(
        "distribution", f"127.0.0.1:{port}", storage, process, log, lambda: start_distribution(base, htpasswd, port)
    )

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text(errors='replace')}")
        return httpx.get(f"http://{registry.address}/v2/", timeout=2).status_code in (200, 401)

    try:
        wait_for(up, 30, "docker-registry")
    except Exception:
        registry.stop()
        raise
    return registry


def start_dockyard(base: Path, config: Path | None = None, port: int | None = None) -> Registry:
    server = start_registry(base / "storage", config=config, port=port)
    return Registry(
        "dockyard", server.address, server.root, server.process, server.log,
        lambda: start_dockyard(base, config, server.port),
    )  # fmt: skip


@pytest.fixture(params=["distribution", "dockyard"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """Each pull test runs against both registries: ours, and the reference implementation."""
    require_tool("skopeo")
    base = tmp_path / request.param
    base.mkdir()
    server = start_distribution(base) if request.param == "distribution" else start_dockyard(base)
    yield server
    server.stop()


@dataclass
class Cli:
    root: Path

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKYARD_RUNTIME_ROOT": str(self.root)}
        result = subprocess.run(
            [sys.executable, "-m", "dockyard", *args],
            cwd=ROOT,
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"dockyard {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture
def dockyard(whiteout_tmp_path: Path) -> Cli:
    """`dockyard` as a subprocess with its own runtime root; pulling needs root (owners, whiteout devices), and
    the root a filesystem that takes whiteout devices (not the overlayfs of a container's root)."""
    return Cli(whiteout_tmp_path / "runtime")
