"""Real processes for end-to-end tests: a `dockyard serve` on a free loopback port, and a private
Docker engine (its own data root, exec root and socket under a temp dir)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from tests.conftest import whiteouts_work

ROOT = Path(__file__).resolve().parents[1]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(check: object, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except RuntimeError:
            raise
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


@dataclass
class RegistryProcess:
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    scheme: str = "http"
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_registry(
    root: Path,
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    workers: int = 1,
    scheme: str = "http",
    verify: bool | str | ssl.SSLContext = False,
    ready_path: str = "/v2/",
) -> RegistryProcess:
    """Start `dockyard serve` on 127.0.0.1 with storage in `root` (unless the config says otherwise)."""
    port = port or free_port()
    log = root.parent / f"dockyard-{port}.log"
    environ = {**os.environ, "REGISTRY_STORAGE_DELETE_ENABLED": "true", **(env or {})}
    if not _other_driver(config) and "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY" not in (env or {}):
        # Only one storage driver may be configured: a config naming S3 keeps its own.
        environ["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = str(root)
    cmd = [
        sys.executable,
        "-m",
        "dockyard",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if config is not None:
        cmd.append(str(config))
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT)
    server = RegistryProcess(root, port, process, log, scheme)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"dockyard serve exited: {server.logs()}")
        return httpx.get(f"{server.url}{ready_path}", verify=verify, timeout=2).status_code in (200, 401)

    try:
        wait_for(up, 30, "dockyard serve")
    except Exception:
        server.stop()
        raise
    return server


def _other_driver(config: Path | None) -> bool:
    if config is None:
        return False
    storage = (yaml.safe_load(config.read_text()) or {}).get("storage") or {}
    return any(name in storage for name in ("s3", "inmemory"))


@contextlib.contextmanager
def running_registry(root: Path, **kwargs: object) -> Iterator[RegistryProcess]:
    server = start_registry(root, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


@dataclass
class DockerEngine:
    base: Path
    process: subprocess.Popen[bytes]
    socket: Path
    env: dict[str, str] = field(default_factory=dict)

    def docker(
        self, *args: str, check: bool = True, timeout: float = 300, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=input is None, timeout=timeout, input=input
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # dockerd leaves its overlay/netns mounts behind when killed; unmount what is ours only.
        with open("/proc/self/mounts") as mounts:
            ours = [line.split()[1] for line in mounts if str(self.base) in line.split()[1]]
        for mountpoint in sorted(ours, key=len, reverse=True):
            subprocess.run(["umount", "-l", mountpoint], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def start_dockerd(base: Path, extra_args: list[str] | None = None) -> DockerEngine:
    """A private Docker engine; its registries on 127.0.0.0/8 are plain HTTP by default."""
    base.mkdir(parents=True, exist_ok=True)
    sock = base / "docker.sock"
    log = base / "dockerd.log"
    data = base / "data"
    data.mkdir(exist_ok=True)
    if not whiteouts_work(data):
        # overlay2 cannot stack on an overlayfs (a container's root): the engine's store goes on a tmpfs,
        # which stop() unmounts with the engine's other mounts.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0710", "tmpfs", str(data)], check=True)
    cmd = [
        "dockerd",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--data-root",
        str(data),
        "--exec-root",
        str(base / "exec"),
        "--pidfile",
        str(base / "dockerd.pid"),
        "-H",
        f"unix://{sock}",
        "--storage-driver",
        "overlay2",
        *(extra_args or []),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": str(base / "client")}
    engine = DockerEngine(base, process, sock, env)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"dockerd exited: {log.read_text(errors='replace')[-3000:]}")
        return subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=10).returncode == 0

    try:
        wait_for(up, 60, "dockerd")
    except Exception:
        engine.stop()
        raise
    return engine
