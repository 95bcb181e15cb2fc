"""Network records on disk, with their address allocations (IPAM), under `<root>/networks/`:
one `<id>.json` per network, changed only while holding `<root>/networks/.lock` (flock), so
concurrent `run`s never hand out one address twice."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.atomicfile import write_atomic

__all__ = ["BUILTIN", "Endpoint", "Network", "NetworkError", "NetworkStore"]

BUILTIN = ("bridge", "host", "none")
_POOL = ipaddress.ip_network("10.89.0.0/16")


class NetworkError(Exception):
    """A refusal worded as Docker's daemon words it (printed after "Error response from daemon: ")."""

    def __init__(self, message: str, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


@dataclass(frozen=True)
class Endpoint:
    """A container's attachment: its address and the names others reach it by."""

    container_id: str
    container_name: str
    ip: str
    aliases: tuple[str, ...] = ()
    order: int = 0  # the container's Nth network: its interface is eth<N>
    active: bool = False  # plugged: the container runs and has its interface


@dataclass
class Network:
    id: str
    name: str
    driver: str = "bridge"
    subnet: str = ""
    gateway: str = ""
    internal: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    created: str = ""
    builtin: bool = False
    # Every connected container, running or not: its address is reserved while it is connected.
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        """The name of the network's namespace, bind-mounted at /run/netns/<name> (ip-netns(8))."""
        return f"dy-{self.id[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Network:
        d = dict(data)
        d["endpoints"] = {
            k: Endpoint(**{**v, "aliases": tuple(v.get("aliases", ()))}) for k, v in d.get("endpoints", {}).items()
        }
        return cls(**d)

    def free_address(self, wanted: str | None) -> str:
        net = ipaddress.ip_network(self.subnet)
        taken = {e.ip for e in self.endpoints.values()} | {self.gateway}
        if wanted:
            try:
                address = ipaddress.ip_address(wanted)
            except ValueError:
                raise NetworkError(f"invalid IPv4 address: {wanted}") from None
            if address not in net:
                raise NetworkError(f"no configured subnet or ip-range contain the IP address {wanted}")
            if wanted in taken:
                raise NetworkError("Address already in use")
            return wanted
        for host in net.hosts():
            if str(host) not in taken:
                return str(host)
        raise NetworkError(f"no available IPv4 addresses on this network's address pools: {self.name} ({self.id})")


class NetworkStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "networks"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.base.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.base / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def list(self) -> list[Network]:
        if not self.base.is_dir():
            return []
        result = []
        for path in sorted(self.base.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                result.append(Network.from_dict(json.loads(path.read_text())))
        return result

    def save(self, network: Network) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        write_atomic(self.base / f"{network.id}.json", json.dumps(network.to_dict(), indent=1).encode())

    def delete(self, network: Network) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.base / f"{network.id}.json").unlink()

    def find(self, ref: str) -> Network | None:
        """By name, full id, or unique id prefix (Docker's order)."""
        networks = self.list()
        for n in networks:
            if n.name == ref or n.id == ref:
                return n
        matches = [n for n in networks if n.id.startswith(ref)]
        return matches[0] if len(matches) == 1 and ref else None

    def get(self, ref: str) -> Network:
        found = self.find(ref)
        if found is None:
            raise NetworkError(f"network {ref} not found", not_found=True)
        return found

    def free_subnet(self) -> tuple[str, str]:
        used = [ipaddress.ip_network(n.subnet) for n in self.list() if n.subnet]
        for candidate in _POOL.subnets(new_prefix=24):
            if not any(candidate.overlaps(u) for u in used):
                return str(candidate), str(next(candidate.hosts()))
        raise NetworkError("could not find an available, non-overlapping IPv4 address pool among the defaults")
