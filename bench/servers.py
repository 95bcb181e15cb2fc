"""The two registries under test, each started on loopback with its own temporary storage.

Both get the same settings: filesystem storage in a fresh directory, deletes enabled, log level
warn, access log off (distribution writes its access log to stdout whatever the level), upload
purging off (distribution walks the whole store at start for it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DISTRIBUTION_BINARY = "docker-registry"
DOCKYARD = "dockyard"
GRANIAN = "dockyard-granian"
DISTRIBUTION = "distribution"
# Dockyard with two webhook endpoints configured (receivers in the bench process): `--notifications`.
EVENTS = "dockyard-events"

_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: dockyard-bench-secret
"""


class ServerError(RuntimeError):
    """A server would not start or stop."""


@dataclass
class Server:
    name: str
    host: str
    port: int
    root: Path  # the storage root directory (distribution's layout in both)
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServerError(f"{self.name} is not running")
        return self.process.pid

    @property
    def data_root(self) -> Path:
        return self.root / "docker" / "registry" / "v2"

    def start(self, timeout: float = 30.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_path = self.root.parent / f"{self.name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.name} exited at start ({self.process.returncode}): {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.name} did not answer on {self.url} within {timeout:.0f}s: {self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            # Only the process we started, and its own children, by pid.
            for pid in [*descendants(process.pid), process.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait(timeout)

    def log_tail(self, limit: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-limit:]

    def pids(self) -> list[int]:
        """The server's processes: the one we started and all its descendants."""
        return [self.pid, *descendants(self.pid)]


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            found.extend(children)
            pending.extend(children)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def distribution_binary() -> str | None:
    return shutil.which(DISTRIBUTION_BINARY)


def distribution_version() -> str:
    binary = distribution_binary()
    if binary is None:
        return "missing"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False, timeout=10)
    return done.stdout.strip() or done.stderr.strip()


def _write_config(workdir: Path, name: str, port: int, sections: str = "") -> tuple[Path, Path]:
    root = workdir / name / "data"
    config = workdir / name / "config.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(_CONFIG.format(root=root, port=port) + sections)
    return config, root


def dockyard(
    workdir: Path,
    workers: int | None = None,
    extra: Sequence[str] = (),
    name: str = DOCKYARD,
    sections: str = "",
) -> Server:
    """`sections`: more config (YAML) after the shared settings, e.g. a `notifications` section."""
    port = free_port()
    config, root = _write_config(workdir, name, port, sections)
    command = [sys.executable, "-m", "dockyard", "serve", str(config), "--port", str(port), *extra]
    if workers is not None:
        command += ["--workers", str(workers)]
    return Server(name, "127.0.0.1", port, root, command)


def dockyard_granian(workdir: Path, workers: int | None = None, name: str = GRANIAN) -> Server:
    """Dockyard's app under granian (Rust HTTP, zero-copy `http.response.pathsend`) instead of uvicorn:
    an option the benchmark measures beside the default."""
    binary = shutil.which("granian", path=str(Path(sys.executable).parent)) or shutil.which("granian")
    if binary is None:
        raise ServerError("granian not found (pip install granian)")
    port = free_port()
    config, root = _write_config(workdir, name, port)
    command = [binary, "--interface", "asgi", "--factory", "--loop", "uvloop", "--log-level", "warning"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers or os.cpu_count() or 1)]
    command += ["--backlog", "4096", "registry.asgi:app_factory"]
    return Server(name, "127.0.0.1", port, root, command, env={"DOCKYARD_CONFIG": str(config)})


def distribution(workdir: Path) -> Server:
    binary = distribution_binary()
    if binary is None:
        raise ServerError(f"{DISTRIBUTION_BINARY} not found")
    port = free_port()
    config, root = _write_config(workdir, DISTRIBUTION, port)
    return Server(DISTRIBUTION, "127.0.0.1", port, root, [binary, "serve", str(config)])
