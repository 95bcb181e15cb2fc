"""Name resolution on a network: each running member's /etc/hosts lists the other running
members of the networks it shares (name, aliases, short id) and its `--link` aliases, rewritten
whenever a member starts, stops, connects or disconnects. The file is bind-mounted into the
container, so it is rewritten in place (same inode): a rename would leave the old one mounted."""

from __future__ import annotations

import contextlib
from pathlib import Path

from runtime.containers import Container, ContainerError, ContainerStore
from runtime.etcfiles import DEFAULT_HOSTS, parse_add_host
from runtime.networks.store import Endpoint, Network, NetworkStore

__all__ = ["hosts_text", "refresh_hosts"]


def _line(endpoint: Endpoint) -> str:
    names = dict.fromkeys([endpoint.container_name, *endpoint.aliases, endpoint.container_id[:12]])
    return f"{endpoint.ip}\t{' '.join(names)}\n"


def hosts_text(container: Container, networks: list[Network]) -> str:
    spec = container.spec
    joined = [n for n in networks if (e := n.endpoints.get(spec.id)) is not None and e.active]
    joined.sort(key=lambda n: n.endpoints[spec.id].order)
    text = DEFAULT_HOSTS + "".join(f"{a}\t{n}\n" for n, a in (parse_add_host(h) for h in spec.extra_hosts))
    text += f"{joined[0].endpoints[spec.id].ip}\t{spec.hostname}\n" if joined else f"127.0.1.1\t{spec.hostname}\n"
    for link in spec.links:
        name, _, alias = link.partition(":")
        for net in joined:
            peer = next(
                (e for e in net.endpoints.values() if e.active and name in (e.container_name, e.container_id)), None
            )
            if peer is not None:
                text += f"{peer.ip}\t{' '.join(dict.fromkeys([alias or name, peer.container_name]))}\n"
                break
    for net in joined:
        text += "".join(_line(e) for cid, e in net.endpoints.items() if e.active and cid != spec.id)
    return text


def refresh_hosts(root: Path) -> None:
    """Rewrite the /etc/hosts of every running container on a user network."""
    networks = NetworkStore(root).list()
    members = {cid for n in networks for cid, e in n.endpoints.items() if e.active}
    containers = ContainerStore(root)
    for cid in members:
        with contextlib.suppress(ContainerError, OSError):
            container = containers.get(cid)
            _rewrite(container.dir / "hosts", hosts_text(container, networks))


def _rewrite(path: Path, text: str) -> None:
    data = text.encode()
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate(len(data))
