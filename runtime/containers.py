"""Container records on disk: one directory per container under `<root>/containers/`.

```
<root>/containers/<id>/
    config.json        the ContainerSpec, written once at create
    state.json         status, pids, exit code, timestamps, cgroup; replaced atomically
    container.log      JSON lines {"stream", "log", "time"}, Docker's json-file format
    upper/ work/       the container layer: overlayfs upper and work directories
    rootfs/            mount point of the root (mounted only inside the container's namespace)
    copy/              the flattened private root, only when overlayfs is unavailable
    hostname hosts resolv.conf
    attach.sock        the supervisor's attach socket while it runs
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runtime.atomicfile import write_atomic
from runtime.spec import ContainerSpec

__all__ = ["Container", "ContainerError", "ContainerStore", "State", "images_in_use", "now"]

Status = Literal["created", "running", "restarting", "exited"]


class ContainerError(Exception):
    pass


def now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


@dataclass
class State:
    status: Status = "created"
    pid: int = 0  # PID 1 of the container, as the host sees it
    pid_start: int = 0  # its start time (/proc/<pid>/stat field 22), to tell a reused pid apart
    supervisor: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    created: str = ""
    started: str = ""
    finished: str = ""
    cgroup: dict[str, Any] = dataclasses.field(default_factory=dict)
    supervisor_start: int = 0  # the supervisor's start time, to tell it is still there
    restart_count: int = 0
    manually_stopped: bool = False  # by stop or kill: the restart policy does not apply
    # The published ports while running, host ports chosen: [{"HostIp", "HostPort", "port", "proto"}]
    ports: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def process_start_time(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat.rpartition(")")[2].split()[19])


@dataclass
class Container:
    spec: ContainerSpec
    dir: Path

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def name(self) -> str:
        return self.spec.name

    def state(self) -> State:
        try:
            data = json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return State()
        known = {f.name for f in dataclasses.fields(State)}
        state = State(**{k: v for k, v in data.items() if k in known})
        if (state.status == "running" and not self.alive(state)) or (
            state.status == "restarting" and not self.supervised(state)
        ):
            # The supervisor died without recording the end (killed, or the machine restarted).
            state.status = "exited"
            state.exit_code = state.exit_code or 255
        return state

    @staticmethod
    def alive(state: State) -> bool:
        return state.pid > 0 and process_start_time(state.pid) == state.pid_start

    @staticmethod
    def supervised(state: State) -> bool:
        return state.supervisor > 0 and process_start_time(state.supervisor) == state.supervisor_start

    def save_state(self, state: State) -> None:
        write_atomic(self.dir / "state.json", json.dumps(dataclasses.asdict(state), indent=1).encode())

    def update_state(self, **changes: Any) -> State:
        state = self.state()
        state = dataclasses.replace(state, **changes)
        self.save_state(state)
        return state

    @property
    def seccomp_cache(self) -> Path:
        """Where the runtime keeps compiled seccomp filters: beside the containers, in its root."""
        return self.dir.parent.parent / "cache" / "seccomp"

    @property
    def log_path(self) -> Path:
        return self.dir / "container.log"

    @property
    def attach_socket(self) -> Path:
        return self.dir / "attach.sock"

    @contextlib.contextmanager
    def attach_address(self) -> Iterator[str]:
        """A short name for the attach socket: sun_path holds only 108 bytes (unix(7)), less than
        a deep runtime root may need, so it is reached through an open directory descriptor."""
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield f"/proc/self/fd/{fd}/attach.sock"
        finally:
            os.close(fd)


class ContainerStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.base = self.root / "containers"

    def new_id(self) -> str:
        return os.urandom(32).hex()  # as secrets.token_hex(32), without loading hmac

    def create(self, spec: ContainerSpec) -> Container:
        if spec.name and self.find_by_name(spec.name) is not None:
            raise ContainerError(
                f'Conflict. The container name "/{spec.name}" is already in use. '
                "You have to remove (or rename) that container to be able to reuse that name."
            )
        self.base.mkdir(parents=True, exist_ok=True)
        directory = self.base / spec.id
        directory.mkdir(mode=0o700)
        for sub in ("upper", "work", "rootfs"):
            (directory / sub).mkdir()
        write_atomic(directory / "config.json", json.dumps(spec.to_dict(), indent=1).encode())
        container = Container(spec, directory)
        container.save_state(State(created=now()))
        return container

    def list(self) -> list[Container]:
        result: list[Container] = []
        if not self.base.is_dir():
            return result
        for entry in self.base.iterdir():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                spec = ContainerSpec.from_dict(json.loads((entry / "config.json").read_text()))
                result.append(Container(spec, entry))
        return sorted(result, key=lambda c: c.state().created, reverse=True)

    def find_by_name(self, name: str) -> Container | None:
        return next((c for c in self.list() if c.name == name), None)

    def get(self, ref: str) -> Container:
        """By full id, name, or unique id prefix, as Docker resolves container references."""
        containers = self.list()
        for c in containers:
            if c.id == ref or c.name == ref.lstrip("/"):
                return c
        matches = [c for c in containers if c.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ContainerError(f"multiple IDs found with provided prefix: {ref}")
        raise ContainerError(f"No such container: {ref}")

    def rename(self, container: Container, name: str) -> Container:
        """`docker rename`: the name is only in config.json; a running container keeps running."""
        other = self.find_by_name(name)
        if other is not None:
            raise ContainerError(
                f'Error when allocating new name: Conflict. The container name "/{name}" is already in use by '
                f'container "{other.id}". You have to remove (or rename) that container to be able to reuse that name.'
            )
        spec = dataclasses.replace(container.spec, name=name)
        write_atomic(container.dir / "config.json", json.dumps(spec.to_dict(), indent=1).encode())
        return Container(spec, container.dir)

    def remove_files(self, container: Container) -> None:
        shutil.rmtree(container.dir, ignore_errors=True)


def images_in_use(root: Path) -> set[str]:
    """Ids of the images that existing containers (running or not) were created from."""
    return {c.spec.image_id for c in ContainerStore(root).list()}
