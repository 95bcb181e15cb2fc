"""The container's /etc/hosts and /etc/resolv.conf, written by its supervisor and bind-mounted in.

As Docker: a host-network container sees the host's files (with `--add-host` lines appended and
`--dns*` applied); a private network gets the default localhost entries, and the host's
resolv.conf without its loopback resolvers, which cannot answer from another network namespace
(Docker's filterResolvDNS, falling back to its public defaults when none is left)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from runtime.spec import ContainerSpec

__all__ = ["DEFAULT_HOSTS", "hosts_file", "parse_add_host", "resolv_conf"]

DEFAULT_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
_FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")
_LOOPBACK_NAMESERVER = re.compile(r"^\s*nameserver\s*((127\.([0-9]{1,3}\.){2}[0-9]{1,3})|(::1))\s*$")
_SYSTEMD_RESOLVED = Path("/run/systemd/resolve/resolv.conf")


def parse_add_host(value: str) -> tuple[str, str]:
    """--add-host NAME:IP or NAME=IP (IPv6 addresses keep their colons); Docker's wording on errors."""
    sep = "=" if "=" in value else ":"
    name, found, address = value.partition(sep)
    if not found or not name or not address:
        raise ValueError(f'invalid argument "{value}" for "--add-host" flag: bad format for add-host: "{value}"')
    address = address.strip("[]")
    if address == "host-gateway":
        raise ValueError("--add-host host-gateway: Dockyard's networks have no gateway to the host")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(
            f'invalid argument "{value}" for "--add-host" flag: invalid IP address in add-host: "{address}"'
        ) from None
    return name, address


def hosts_file(spec: ContainerSpec, host_hosts: str) -> str:
    extra = "".join(f"{address}\t{name}\n" for name, address in (parse_add_host(h) for h in spec.extra_hosts))
    if spec.network == "host":
        base = host_hosts if not host_hosts or host_hosts.endswith("\n") else host_hosts + "\n"
        return base + extra
    return DEFAULT_HOSTS + extra + f"127.0.1.1\t{spec.hostname}\n"


def host_resolv_conf(path: Path = Path("/etc/resolv.conf"), resolved: Path = _SYSTEMD_RESOLVED) -> str:
    try:
        text = path.read_text()
    except OSError:
        return ""
    # systemd-resolved's stub (127.0.0.53) is loopback; its upstream list is the real one (as Docker).
    if _nameservers(text) == ["127.0.0.53"] and resolved.is_file():
        return resolved.read_text()
    return text


def resolv_conf(spec: ContainerSpec, host_text: str) -> str:
    text = host_text
    if spec.network != "host":
        text = "".join(line for line in host_text.splitlines(keepends=True) if not _LOOPBACK_NAMESERVER.match(line))
        if not _nameservers(text):
            text = (text if not text or text.endswith("\n") else text + "\n") + "".join(
                f"nameserver {ns}\n" for ns in _FALLBACK_DNS
            )
    if not (spec.dns or spec.dns_search or spec.dns_options):
        return text
    nameservers = list(spec.dns) or _nameservers(text)
    search = list(spec.dns_search) or _values(text, "search")
    options = list(spec.dns_options) or _values(text, "options")
    out = ""
    if search and " ".join(search).strip() != ".":
        out += "search " + " ".join(search) + "\n"
    out += "".join(f"nameserver {ns}\n" for ns in nameservers)
    if options:
        out += "options " + " ".join(options) + "\n"
    return out


def _nameservers(text: str) -> list[str]:
    return [
        fields[1]
        for fields in (line.split() for line in text.splitlines())
        if len(fields) > 1 and fields[0] == "nameserver"
    ]


def _values(text: str, key: str) -> list[str]:
    values: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == key:
            values = fields[1:]  # the last line wins, as in the resolver
    return values
