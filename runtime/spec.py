"""What a container is, as frozen data: its layers, process, mounts, namespaces and resources.

Built once by `dockyard run` from the image config and the flags, stored as the container's
config.json, and read back by every later command. No behaviour here beyond (de)serialisation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.cgroups import Resources
from runtime.security import Security

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
class Rlimit:
    """--ulimit NAME=SOFT[:HARD], applied with setrlimit(2) before exec; -1 is unlimited."""

    name: str  # Docker's names: nofile, nproc, core, ...
    soft: int
    hard: int


@dataclass(frozen=True)
class Tmpfs:
    """--tmpfs PATH[:OPTIONS], mounted with Docker's defaults (nosuid, nodev, noexec)."""

    target: str
    options: str = ""


@dataclass(frozen=True)
class RestartPolicy:
    """--restart no|on-failure[:N]|always|unless-stopped, carried out by the supervisor."""

    name: Literal["no", "on-failure", "always", "unless-stopped"] = "no"
    max_retries: int = 0  # on-failure only; 0 is no limit


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
    rlimits: tuple[Rlimit, ...] = ()


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
    security: Security = field(default_factory=Security)
    # /etc/hosts, /etc/resolv.conf, tmpfs mounts and the restart policy (--add-host, --dns*,
    # --tmpfs, --restart)
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    tmpfs: tuple[Tmpfs, ...] = ()
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    # What `inspect` reports as Docker does (Config.Entrypoint/Cmd/Labels/ExposedPorts); the
    # process itself runs `process.args`.
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", from the image and --expose
    # A user network named at create (`--network NAME`: HostConfig.NetworkMode; the connections
    # themselves live in the network records) and `--link NAME[:ALIAS]`.
    network_name: str = ""
    links: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerSpec:
        d = dict(data)
        proc = dict(d["process"])
        for key in ("args", "env", "groups"):
            proc[key] = tuple(proc.get(key, ()))
        proc["rlimits"] = tuple(Rlimit(**r) for r in proc.get("rlimits", ()))
        d["process"] = ProcessSpec(**proc)
        d["layers"] = tuple(d["layers"])
        d["mounts"] = tuple(Mount(**m) for m in d.get("mounts", ()))
        d["ports"] = tuple(PortMapping(**p) for p in d.get("ports", ()))
        d["resources"] = Resources(**d.get("resources", {}))
        d["security"] = Security.from_dict(d.get("security", {}))
        for key in ("extra_hosts", "dns", "dns_search", "dns_options"):
            d[key] = tuple(d.get(key, ()))
        d["tmpfs"] = tuple(Tmpfs(**t) for t in d.get("tmpfs", ()))
        d["restart"] = RestartPolicy(**d.get("restart", {}))
        for key in ("entrypoint", "cmd"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        d["exposed_ports"] = tuple(d.get("exposed_ports", ()))
        d["links"] = tuple(d.get("links", ()))
        return cls(**d)
