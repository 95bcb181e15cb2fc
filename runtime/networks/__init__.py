"""User-defined networks, as `docker network`: a bridge network is a Linux bridge inside a network
namespace of its own (one per network, as rootless Podman does), with a veth pair per container.

Public API (stable; `dockyard compose` builds on it):

- `create_network(name, *, driver="bridge", subnet=None, gateway=None, internal=False,
  labels=None, root=None) -> Network`: records the network, picks a free /24 from 10.89.0.0/16
  when no subnet is given, creates its namespace and bridge. NetworkError in Docker's words
  when the name is taken or the subnet overlaps another network's.
- `remove_network(name, *, root=None)`: refuses while a container is connected
  ("error while removing network: network NAME id ID has active endpoints").
- `list_networks(*, root=None) -> list[Network]`: the built-in `bridge`, `host`, `none` too.
- `inspect_network(name, *, root=None) -> Network`: by name, id or unique id prefix.
- `connect(container, network, *, aliases=(), ip=None, root=None)` and
  `disconnect(container, network, *, root=None)`: a container by name or id; a running one gets
  (or loses) its interface at once, and every member's /etc/hosts is rewritten.
- `prune_networks(*, root=None) -> list[str]`: removes the user networks no container uses.

`root` is the runtime's state directory (`DOCKYARD_RUNTIME_ROOT`), by default the runtime's.
`run`/`create` take `--network NAME`, `--network-alias`, `--ip`, `--link NAME[:ALIAS]`, `--dns`,
`--dns-search`. Names resolve through /etc/hosts kept up to date by the runtime (docs/runtime.md).
"""

from __future__ import annotations

from runtime.networks.api import (
    Network,
    NetworkError,
    connect,
    create_network,
    disconnect,
    inspect_network,
    list_networks,
    prune_networks,
    remove_network,
)

__all__ = [
    "Network",
    "NetworkError",
    "connect",
    "create_network",
    "disconnect",
    "inspect_network",
    "list_networks",
    "prune_networks",
    "remove_network",
]
