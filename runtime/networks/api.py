"""The network operations behind `dockyard network` and `run --network`: records, IPAM and the
plumbing kept in step, every change made under the store's lock."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from runtime.containers import Container, ContainerError, ContainerStore, now
from runtime.networks import bridge
from runtime.networks.hosts import refresh_hosts
from runtime.networks.store import BUILTIN, Endpoint, Network, NetworkError, NetworkStore

__all__ = [
    "Network",
    "NetworkError",
    "connect",
    "create_network",
    "disconnect",
    "inspect_network",
    "list_networks",
    "plug_container",
    "prune_networks",
    "release_container",
    "remove_network",
    "unplug_container",
]


def _root(root: Path | None) -> Path:
    if root is not None:
        return root
    from runtime.images import default_root

    return default_root()


def _builtin(name: str) -> Network:
    # Stable ids, so that `ls` and `inspect` agree from one call to the next.
    nid = hashlib.sha256(f"dockyard-builtin-{name}".encode()).hexdigest()
    driver = {"bridge": "bridge", "host": "host", "none": "null"}[name]
    return Network(nid, name, driver=driver, builtin=True)


def create_network(
    name: str,
    *,
    driver: str = "bridge",
    subnet: str | None = None,
    gateway: str | None = None,
    internal: bool = False,
    labels: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> Network:
    store = NetworkStore(_root(root))
    if driver != "bridge":
        raise NetworkError(
            f"plugin {driver!r} not found"
            if driver not in ("host", "null")
            else f'only one instance of "{driver}" network is allowed'
        )
    if name in BUILTIN:
        raise NetworkError(f"network with name {name} already exists")
    with store.locked():
        if any(n.name == name for n in store.list()):
            raise NetworkError(f"network with name {name} already exists")
        if subnet:
            try:
                net = ipaddress.ip_network(subnet, strict=False)
            except ValueError:
                raise NetworkError(f"invalid CIDR address: {subnet}") from None
            if net.version != 4:
                raise NetworkError("only IPv4 subnets are supported by Dockyard's bridge networks")
            for other in store.list():
                if other.subnet and ipaddress.ip_network(other.subnet).overlaps(net):
                    raise NetworkError("invalid pool request: Pool overlaps with other one on this address space")
            subnet = str(net)
            if gateway:
                try:
                    gw = ipaddress.ip_address(gateway)
                except ValueError:
                    raise NetworkError(f"invalid gateway address {gateway}") from None
                if gw not in net:
                    raise NetworkError(f"no matching subnet for gateway {gateway}")
            else:
                gateway = str(next(net.hosts()))
        else:
            if gateway:
                raise NetworkError("every ip-range or gateway must have a corresponding subnet")
            subnet, gateway = store.free_subnet()
        network = Network(secrets.token_hex(32), name, "bridge", subnet, gateway, internal, dict(labels or {}), now())
        bridge.create_bridge(network.netns, subnet, gateway)
        try:
            store.save(network)
        except BaseException:
            bridge.delete_bridge(network.netns)
            raise
    return network


def list_networks(*, root: Path | None = None) -> list[Network]:
    return [_builtin(n) for n in BUILTIN] + NetworkStore(_root(root)).list()


def inspect_network(name: str, *, root: Path | None = None) -> Network:
    if name in BUILTIN:
        return _builtin(name)
    return NetworkStore(_root(root)).get(name)


def remove_network(name: str, *, root: Path | None = None) -> None:
    if name in BUILTIN:
        raise NetworkError(f"{name} is a pre-defined network and cannot be removed")
    store = NetworkStore(_root(root))
    with store.locked():
        network = store.get(name)
        if network.endpoints:
            raise NetworkError(
                f"error while removing network: network {network.name} id {network.id} has active endpoints"
            )
        bridge.delete_bridge(network.netns)
        store.delete(network)


def prune_networks(*, root: Path | None = None) -> list[str]:
    store = NetworkStore(_root(root))
    removed = []
    with store.locked():
        for network in store.list():
            if not network.endpoints:
                bridge.delete_bridge(network.netns)
                store.delete(network)
                removed.append(network.name)
    return removed


def _container(root: Path, ref: str | Container) -> Container:
    if isinstance(ref, Container):
        return ref
    try:
        return ContainerStore(root).get(ref)
    except ContainerError as exc:
        raise NetworkError(str(exc), not_found=True) from None


def _running_netns(container: Container) -> str | None:
    state = container.state()
    if state.status == "running" and state.pid:
        return f"/proc/{state.pid}/ns/net"
    return None


def _ifname(network: Network, container_id: str, root: Path) -> str:
    """eth0, eth1, ... in the order the container was connected."""
    joined = [n for n in NetworkStore(root).list() if container_id in n.endpoints]
    joined.sort(key=lambda n: n.endpoints[container_id].order)
    return f"eth{[n.id for n in joined].index(network.id)}"


def connect(
    container: str | Container,
    network: str,
    *,
    aliases: Iterable[str] = (),
    ip: str | None = None,
    root: Path | None = None,
) -> None:
    base = _root(root)
    target = _container(base, container)
    if network in BUILTIN:
        raise NetworkError(
            f"container sharing network namespace with {network} cannot be connected to another network"
            if network != "bridge"
            else "Dockyard's default network cannot be connected to at run time"
        )
    if target.spec.network == "host" or target.spec.network == "none":
        raise NetworkError("container cannot be disconnected from host network or connected to host network")
    store = NetworkStore(base)
    with store.locked():
        net = store.get(network)
        if target.id in net.endpoints:
            raise NetworkError(f"endpoint with name {target.name} already exists in network {net.name}")
        order = 1 + max(
            (e.order for n in store.list() for cid, e in n.endpoints.items() if cid == target.id), default=-1
        )
        endpoint = Endpoint(target.id, target.name, net.free_address(ip), tuple(aliases), order=order)
        net.endpoints[target.id] = endpoint
        store.save(net)
        netns = _running_netns(target)
        if netns is not None:
            _plug(base, net, endpoint, netns)
    if netns is not None:
        refresh_hosts(base)


def disconnect(container: str | Container, network: str, *, root: Path | None = None, force: bool = False) -> None:
    base = _root(root)
    store = NetworkStore(base)
    with store.locked():
        net = store.get(network)
        try:
            target = _container(base, container)
            cid = target.id
        except NetworkError:
            if not force:
                raise
            cid = next((k for k, e in net.endpoints.items() if e.container_name == container), "")
        if cid not in net.endpoints:
            raise NetworkError(f"container {cid} is not connected to network {net.name}")
        bridge.unplug(net.netns, cid)
        del net.endpoints[cid]
        store.save(net)
    refresh_hosts(base)


def _plug(root: Path, net: Network, endpoint: Endpoint, netns_path: str) -> None:
    if not Path("/run/netns", net.netns).exists():  # /run is a tmpfs: gone after a reboot
        bridge.create_bridge(net.netns, net.subnet, net.gateway)
    gateway = "" if net.internal else net.gateway
    bridge.plug(
        net.netns,
        endpoint.container_id,
        netns_path,
        _ifname(net, endpoint.container_id, root),
        endpoint.ip,
        net.subnet,
        gateway,
    )
    net.endpoints[endpoint.container_id] = dataclasses.replace(endpoint, active=True)
    NetworkStore(root).save(net)


def plug_container(root: Path, container_id: str, netns_path: str) -> str | None:
    """At start: an interface on every network the container is connected to; its first address
    (what published ports dial), None when it is on none. Every member's /etc/hosts is rewritten."""
    store = NetworkStore(root)
    first: str | None = None
    with store.locked():
        joined = [n for n in store.list() if container_id in n.endpoints]
        joined.sort(key=lambda n: n.endpoints[container_id].order)
        for net in joined:
            _plug(root, net, net.endpoints[container_id], netns_path)
            first = first or net.endpoints[container_id].ip
    if first is not None:
        refresh_hosts(root)
    return first


def unplug_container(root: Path, container_id: str) -> None:
    """At exit: the veths go (with the container's namespace), the addresses stay reserved."""
    store = NetworkStore(root)
    changed = False
    with store.locked():
        for net in store.list():
            endpoint = net.endpoints.get(container_id)
            if endpoint is not None:
                bridge.unplug(net.netns, container_id)
                net.endpoints[container_id] = dataclasses.replace(endpoint, active=False)
                store.save(net)
                changed = True
    if changed:
        refresh_hosts(root)


def release_container(root: Path, container_id: str) -> None:
    """At removal: the container leaves every network, its addresses freed."""
    store = NetworkStore(root)
    changed = False
    with store.locked():
        for net in store.list():
            if container_id in net.endpoints:
                bridge.unplug(net.netns, container_id)
                del net.endpoints[container_id]
                store.save(net)
                changed = True
    if changed:
        with contextlib.suppress(OSError):
            refresh_hosts(root)
