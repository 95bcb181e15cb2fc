"""What a container is, as frozen data: its layers, process, mounts, namespaces and resources.

Built once by `dockyard run` from the image config and the flags, stored as the container's
config.json, and read back by every later command. No behaviour here beyond (de)serialisation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.cgroups import Resources

NetworkMode = Literal["none", "host", "private"]


@dataclass(frozen=True)
class Mount:
    """A bind mount or a named volume (whose source is the volume's data directory)."""

    source: str
    target: str
    readonly: bool = False
    kind: Literal["bind", "volume"] = "bind"
    volume: str = ""


@dataclass(frozen=True)
class PortMapping:
    host_ip: str
    host_port: int  # 0: any free port, chosen when the container starts (`-p 80`, `-P`)
    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class ProcessSpec:
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    terminal: bool = False
    stdin: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    id: str
    name: str
    image: str
    image_id: str
    layers: tuple[str, ...]  # unpacked layer directories, bottom to top
    process: ProcessSpec
    hostname: str
    user: str = ""
    mounts: tuple[Mount, ...] = ()
    readonly_rootfs: bool = False
    network: NetworkMode = "private"
    ports: tuple[PortMapping, ...] = ()
    resources: Resources = field(default_factory=Resources)
    init: bool = False
    auto_remove: bool = False
    stop_signal: str = "SIGTERM"  # the image's StopSignal: what `stop` sends before SIGKILL
    # What `inspect` reports as Docker does (Config.Entrypoint/Cmd/Labels/ExposedPorts); the
    # process itself runs `process.args`.
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", from the image and --expose

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerSpec:
        d = dict(data)
        proc = dict(d["process"])
        for key in ("args", "env", "groups"):
            proc[key] = tuple(proc.get(key, ()))
        d["process"] = ProcessSpec(**proc)
        d["layers"] = tuple(d["layers"])
        d["mounts"] = tuple(Mount(**m) for m in d.get("mounts", ()))
        d["ports"] = tuple(PortMapping(**p) for p in d.get("ports", ()))
        d["resources"] = Resources(**d.get("resources", {}))
        for key in ("entrypoint", "cmd"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        d["exposed_ports"] = tuple(d.get("exposed_ports", ()))
        return cls(**d)
