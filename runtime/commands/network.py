"""`dockyard network create|ls|inspect|rm|prune|connect|disconnect`, as `docker network`."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]
_DEFAULT_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
_HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], wrap: Callable[[Handler], Handler]
) -> None:
    network = subparsers.add_parser("network", help="Manage networks")
    sub = network.add_subparsers(dest="network_command", metavar="COMMAND", required=True)
    create = sub.add_parser("create", help="Create a network")
    create.add_argument("-d", "--driver", default="bridge")
    create.add_argument("--subnet", action="append", default=[])
    create.add_argument("--gateway", action="append", default=[])
    create.add_argument("--internal", action="store_true")
    create.add_argument("--label", action="append", default=[])
    create.add_argument("name")
    create.set_defaults(func=wrap(cmd_create))
    ls = sub.add_parser("ls", aliases=["list"], help="List networks")
    ls.add_argument("-q", "--quiet", action="store_true")
    ls.add_argument("-f", "--filter", action="append", default=[])
    ls.add_argument("--format", default="")
    ls.add_argument("--no-trunc", action="store_true")
    ls.set_defaults(func=wrap(cmd_ls))
    inspect = sub.add_parser("inspect", help="Display detailed information on one or more networks")
    inspect.add_argument("-f", "--format", default="")
    inspect.add_argument("names", nargs="+")
    inspect.set_defaults(func=wrap(cmd_inspect))
    rm = sub.add_parser("rm", aliases=["remove"], help="Remove one or more networks")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("names", nargs="+")
    rm.set_defaults(func=wrap(cmd_rm))
    prune = sub.add_parser("prune", help="Remove all unused networks")
    prune.add_argument("-f", "--force", action="store_true")
    prune.add_argument("--filter", action="append", default=[])
    prune.set_defaults(func=wrap(cmd_prune))
    connect = sub.add_parser("connect", help="Connect a container to a network")
    connect.add_argument("--alias", action="append", default=[])
    connect.add_argument("--ip", default=None)
    connect.add_argument("network")
    connect.add_argument("container")
    connect.set_defaults(func=wrap(cmd_connect))
    disconnect = sub.add_parser("disconnect", help="Disconnect a container from a network")
    disconnect.add_argument("-f", "--force", action="store_true")
    disconnect.add_argument("network")
    disconnect.add_argument("container")
    disconnect.set_defaults(func=wrap(cmd_disconnect))


def _fail(exc: Exception) -> int:
    print(f"Error response from daemon: {exc}", file=sys.stderr)
    return 1


def _labels(items: list[str]) -> dict[str, str]:
    return {k: v for k, _, v in (item.partition("=") for item in items)}


def cmd_create(args: argparse.Namespace) -> int:
    from runtime.networks import NetworkError, create_network

    if len(args.subnet) > 1 or len(args.gateway) > 1:
        print("Error response from daemon: Dockyard's bridge networks take one --subnet", file=sys.stderr)
        return 1
    if len(args.gateway) > len(args.subnet):
        print("every ip-range or gateway must have a corresponding subnet", file=sys.stderr)
        return 1
    try:
        network = create_network(
            args.name,
            driver=args.driver,
            subnet=args.subnet[0] if args.subnet else None,
            gateway=args.gateway[0] if args.gateway else None,
            internal=args.internal,
            labels=_labels(args.label),
        )
    except NetworkError as exc:
        if "corresponding subnet" in str(exc):  # refused by the CLI itself, before the daemon
            print(exc, file=sys.stderr)
            return 1
        return _fail(exc)
    print(network.id)
    return 0


def _row(network: Any, no_trunc: bool) -> dict[str, Any]:
    return {
        "ID": network.id if no_trunc else network.id[:12],
        "Name": network.name,
        "Driver": network.driver,
        "Scope": "local",
        "IPv6": "false",
        "Internal": "true" if network.internal else "false",
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(network.labels.items())),
        "CreatedAt": network.created,
    }


def _label(network: Any, value: str) -> bool:
    key, sep, wanted = value.partition("=")
    return key in network.labels and (not sep or network.labels[key] == wanted)


def _matches(network: Any, filters: list[tuple[str, str]]) -> bool:
    by_key: dict[str, list[str]] = {}
    for key, value in filters:
        by_key.setdefault(key, []).append(value)
    tests: dict[str, Callable[[str], bool]] = {
        "name": lambda v: v in network.name,
        "id": lambda v: network.id.startswith(v),
        "driver": lambda v: network.driver == v,
        "scope": lambda v: v == "local",
        "type": lambda v: v == ("builtin" if network.builtin else "custom"),
        "dangling": lambda v: (v in ("true", "1")) == (not network.builtin and not network.endpoints),
        "label": lambda v: _label(network, v),
    }
    return all(any(tests[key](v) for v in values) for key, values in by_key.items())


def cmd_ls(args: argparse.Namespace) -> int:
    from runtime.listformat import TemplateError, render_rows
    from runtime.networks import list_networks

    filters = []
    for item in args.filter:
        key, _, value = item.partition("=")
        if key not in ("name", "id", "driver", "scope", "type", "dangling", "label"):
            print(f"Error response from daemon: Invalid filter '{key}'", file=sys.stderr)
            return 1
        if key == "type" and value not in ("custom", "builtin"):
            print(f"Error response from daemon: invalid filter: 'type'='{value}'", file=sys.stderr)
            return 1
        filters.append((key, value))
    networks = sorted((n for n in list_networks() if _matches(n, filters)), key=lambda n: n.name)
    if args.quiet:
        sys.stdout.write("".join((n.id if args.no_trunc else n.id[:12]) + "\n" for n in networks))
        return 0
    try:
        out = render_rows(args.format or _DEFAULT_FORMAT, [_row(n, args.no_trunc) for n in networks], _HEADERS)
    except TemplateError as exc:
        print(f"template parsing error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(out if out.endswith("\n") or not out else out + "\n")
    return 0


def inspect_dict(network: Any) -> dict[str, Any]:
    prefix = f"/{ipaddress.ip_network(network.subnet).prefixlen}" if network.subnet else ""
    containers = {
        cid: {
            "Name": e.container_name,
            "EndpointID": cid[:32] + network.id[:32] if e.active else "",
            "MacAddress": "",
            "IPv4Address": e.ip + prefix,
            "IPv6Address": "",
        }
        for cid, e in sorted(network.endpoints.items())
    }
    config = [{"Subnet": network.subnet, "Gateway": network.gateway}] if network.subnet else []
    return {
        "Name": network.name,
        "Id": network.id,
        "Created": network.created or "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": network.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None if network.builtin else {}, "Config": config},
        "Internal": network.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": {},
        "Labels": dict(sorted(network.labels.items())),
    }


def cmd_inspect(args: argparse.Namespace) -> int:
    from runtime.networks import NetworkError, inspect_network

    found = []
    code = 0
    for name in args.names:
        try:
            found.append(inspect_dict(inspect_network(name)))
        except NetworkError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            code = 1
    if args.format:
        from runtime.gotemplate import Template, TemplateError

        try:
            template = Template(args.format.replace("\\n", "\n").replace("\\t", "\t"))
            sys.stdout.write("".join(template.execute(d) + "\n" for d in found))
        except TemplateError as exc:
            print(f"template parsing error: {exc}", file=sys.stderr)
            return 1
    else:
        print(json.dumps(found, indent=4))
    return code


def cmd_rm(args: argparse.Namespace) -> int:
    from runtime.networks import NetworkError, remove_network

    code = 0
    for name in args.names:
        try:
            remove_network(name)
            print(name)
        except NetworkError as exc:
            if not (exc.not_found and args.force):
                _fail(exc)
                code = 1
    if code:
        print(f"exit status {code}", file=sys.stderr)  # docker/cli's StatusError after the daemon's errors
    return code


def cmd_prune(args: argparse.Namespace) -> int:
    from runtime.commands.confirm import confirm
    from runtime.networks import prune_networks

    warning = "WARNING! This will remove all custom networks not used by at least one container."
    if not args.force and not confirm(warning):
        return 0
    removed = prune_networks()
    if removed:
        print("Deleted Networks:\n" + "".join(f"{name}\n" for name in removed))
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    from runtime.networks import NetworkError, connect

    try:
        connect(args.container, args.network, aliases=args.alias, ip=args.ip)
    except NetworkError as exc:
        return _fail(exc)
    return 0


def cmd_disconnect(args: argparse.Namespace) -> int:
    from runtime.networks import NetworkError, disconnect

    try:
        disconnect(args.container, args.network, force=args.force)
    except NetworkError as exc:
        return _fail(exc)
    return 0
