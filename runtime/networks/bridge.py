"""The kernel side of a bridge network, through iproute2's `ip`: the network's namespace with its
bridge `br0`, and one veth pair per container (`ve<id>` on the bridge, `eth<N>` in the container).
Nothing is ever created in the host's namespace, so no private address appears there, and two
networks, in two namespaces, have no path to each other."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import threading

__all__ = ["create_bridge", "delete_bridge", "plug", "unplug", "veth_name"]

BRIDGE = "br0"


class PlumbingError(Exception):
    pass


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise PlumbingError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def create_bridge(netns: str, subnet: str, gateway: str) -> None:
    prefix = ipaddress.ip_network(subnet).prefixlen
    _ip("netns", "add", netns)
    try:
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", netns, "addr", "add", f"{gateway}/{prefix}", "dev", BRIDGE)
        _ip("-n", netns, "link", "set", BRIDGE, "up")
    except PlumbingError:
        delete_bridge(netns)
        raise


def delete_bridge(netns: str) -> None:
    """Deleting the namespace takes the bridge and every veth end on it along."""
    _ip("netns", "del", netns, check=False)


def veth_name(container_id: str, netns: str) -> str:
    """The bridge-side end: unique per (container, network), within IFNAMSIZ."""
    return f"ve{container_id[:6]}{netns[-6:]}"


def plug(netns: str, container_id: str, target_ns: str, ifname: str, ip: str, subnet: str, gateway: str) -> None:
    """A veth pair: one end on the bridge, the other moved into `target_ns` (a netns path) as
    `ifname` with address `ip`. Runs `ip` inside `target_ns` through nsenter."""
    host_end = veth_name(container_id, netns)
    temp = "vc" + host_end[2:]
    prefix = ipaddress.ip_network(subnet).prefixlen
    _ip("-n", netns, "link", "del", host_end, check=False)
    _ip("-n", netns, "link", "add", host_end, "type", "veth", "peer", "name", temp)
    try:
        _ip("-n", netns, "link", "set", host_end, "master", BRIDGE, "up")
        _ip("-n", netns, "link", "set", temp, "netns", target_ns)
        inside = ["nsenter", f"--net={target_ns}", "ip"]
        for args in (
            ("link", "set", temp, "name", ifname),
            ("addr", "add", f"{ip}/{prefix}", "dev", ifname),
            ("link", "set", ifname, "up"),
        ):
            done = subprocess.run([*inside, *args], capture_output=True, text=True)
            if done.returncode != 0:
                raise PlumbingError(f"ip {' '.join(args)}: {done.stderr.strip()}")
        if ifname == "eth0":
            subprocess.run([*inside, "route", "add", "default", "via", gateway], capture_output=True)
    except BaseException:
        _ip("-n", netns, "link", "del", host_end, check=False)
        raise


def unplug(netns: str, container_id: str) -> None:
    _ip("-n", netns, "link", "del", veth_name(container_id, netns), check=False)


def own_netns_path() -> str:
    """This thread's network namespace, as a path other processes can open."""
    return f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net"
