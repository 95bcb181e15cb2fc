"""Published ports as Docker writes and shows them: `-p` parsing (single ports, ranges, /udp, a
random host port), `-P` from the exposed ports, and the PORTS column of `ps`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from runtime.spec import PortMapping

__all__ = ["DEFAULT_HOST_IP", "PublishedPort", "display_ports", "normalise_exposed", "parse_publish", "publish_all"]

# Docker binds every address (0.0.0.0); Dockyard binds loopback unless an address is given, so a
# published port is never reachable from the network by accident.
DEFAULT_HOST_IP = "127.0.0.1"
_PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class PublishedPort:
    """One row of Docker's port list (types.Port): IP and PublicPort empty when only exposed."""

    private_port: int
    protocol: str
    ip: str = ""
    public_port: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"HostIp": self.ip, "HostPort": str(self.public_port), "port": self.private_port, "proto": self.protocol}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PublishedPort:
        return cls(int(data["port"]), str(data["proto"]), str(data["HostIp"]), int(data["HostPort"]))


def _port_range(text: str, what: str) -> list[int]:
    start, sep, end = text.partition("-")
    try:
        first = int(start)
        last = int(end) if sep else first
    except ValueError:
        raise ValueError(f"invalid {what} port: {text}") from None
    if not (0 < first <= last < 65536):
        raise ValueError(f"invalid {what} port: {text}")
    return list(range(first, last + 1))


def parse_publish(value: str) -> list[PortMapping]:
    """Docker's `-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`, each port possibly a range `A-B`."""
    spec, _, protocol = value.partition("/")
    protocol = protocol or "tcp"
    if protocol not in _PROTOCOLS:
        raise ValueError(f"invalid proto: {protocol}")
    if spec.startswith("["):  # [::1]:8080:80
        host_ip, sep, rest = spec[1:].partition("]:")
        if not sep:
            raise ValueError(f"invalid IP address: {value}")
        host_port, _, ctr_port = rest.rpartition(":")
    else:
        parts = spec.split(":")
        if len(parts) == 1:
            host_ip, host_port, ctr_port = "", "", parts[0]
        elif len(parts) == 2:
            host_ip, (host_port, ctr_port) = "", parts
        elif len(parts) == 3:
            host_ip, host_port, ctr_port = parts
        else:
            raise ValueError(f"invalid port format for --publish: {value}")
    if not ctr_port:
        raise ValueError(f"no port specified: {value}<empty>")
    containers = _port_range(ctr_port, "containerPort")
    hosts = _port_range(host_port, "hostPort") if host_port else [0] * len(containers)
    if len(hosts) != len(containers):
        if len(containers) != 1:
            raise ValueError(f"invalid ranges specified for container and host Ports: {ctr_port} and {host_port}")
        # One container port and a host range: Docker takes any free port of the range; the
        # runtime takes the first.
        hosts = hosts[:1]
    ip = host_ip or DEFAULT_HOST_IP
    proto = cast("Any", protocol)
    return [PortMapping(ip, h, c, proto) for h, c in zip(hosts, containers, strict=True)]


def normalise_exposed(port: str) -> str:
    """`80` -> `80/tcp`; refuses what Docker refuses."""
    number, _, protocol = port.partition("/")
    protocol = protocol or "tcp"
    if protocol not in _PROTOCOLS:
        raise ValueError(f"invalid proto: {protocol}")
    for p in _port_range(number, "exposed"):
        del p
    return f"{number}/{protocol}"


def publish_all(exposed: Iterable[str], explicit: Sequence[PortMapping]) -> list[PortMapping]:
    """`-P`: every exposed port not already published gets a random host port."""
    taken = {(m.container_port, m.protocol) for m in explicit}
    result = []
    for item in exposed:
        number, _, protocol = normalise_exposed(item).partition("/")
        for port in _port_range(number, "exposed"):
            if (port, protocol) not in taken:
                result.append(PortMapping(DEFAULT_HOST_IP, 0, port, cast("Any", protocol)))
    return result


def _join_host_port(ip: str, port: int | str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def display_ports(ports: Iterable[PublishedPort]) -> str:
    """docker/cli's DisplayablePorts: runs of ports published on the same number group into
    ranges (`127.0.0.1:8000-8001->8000-8001/tcp`), other mappings are listed one by one."""
    ordered = sorted(ports, key=lambda p: (p.private_port, p.ip, p.public_port, p.protocol))
    groups: dict[str, list[int]] = {}
    result: list[str] = []
    mappings: list[str] = []
    for port in ordered:
        key = port.protocol
        if port.ip:
            if port.public_port != port.private_port:
                address = _join_host_port(port.ip, port.public_port)
                mappings.append(f"{address}->{port.private_port}/{port.protocol}")
                continue
            key = f"{port.ip}/{port.protocol}"
        group = groups.get(key)
        if group is None:
            groups[key] = [port.private_port, port.private_port]
        elif port.private_port == group[1] + 1:
            group[1] = port.private_port
        else:
            result.append(_group(key, *group))
            groups[key] = [port.private_port, port.private_port]
    result += [_group(key, *group) for key, group in groups.items()]
    return ", ".join(result + mappings)


def _group(key: str, first: int, last: int) -> str:
    ip, _, protocol = key.rpartition("/")
    text = str(first) if first == last else f"{first}-{last}"
    if ip:
        text = f"{ip}:{text}->{text}"
    return f"{text}/{protocol}"
