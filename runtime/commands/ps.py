"""`dockyard ps`: Docker's columns, `-f/--filter` and `--format`, so that scripts such as
`docker rm $(docker ps -a -q -f status=exited)` work word for word."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.commands.humanize import human_duration, ps_command
from runtime.containers import Container, ContainerStore, State
from runtime.ports import PublishedPort, display_ports

__all__ = ["FilterError", "add_ps_arguments", "cmd_ps", "parse_filters", "parse_time"]

DEFAULT_FORMAT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Label": "LABEL",
    "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS",
}
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
FILTERS = ("status", "name", "id", "label", "ancestor", "exited", "before", "since", "volume", "network", "publish",
           "expose")  # fmt: skip


class FilterError(Exception):
    pass


def add_ps_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("-n", "--last", type=int, default=-1)
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-s", "--size", action="store_true")


def parse_filters(values: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise FilterError(f"bad format of filter (expected name=value): {value}")
        key = key.strip().lower()
        if key not in FILTERS:
            raise FilterError(f"Invalid filter '{key}'")
        if key == "status" and val not in STATUSES:
            raise FilterError(f"Invalid filter 'status={val}'")
        if key == "exited" and not val.lstrip("-").isdigit():
            raise FilterError(f"Invalid filter 'exited={val}'")
        filters.setdefault(key, []).append(val)
    return filters


def parse_time(timestamp: str) -> float:
    import calendar  # with datetime, 2 ms to import: only `ps` filters and formats need it

    base, _, fraction = timestamp.rstrip("Z").partition(".")
    whole = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return whole + (float("0." + fraction) if fraction.isdigit() else 0.0)


def _since(timestamp: str) -> float:
    return max(0.0, time.time() - parse_time(timestamp)) if timestamp else 0.0


def status_text(state: State) -> str:
    if state.status == "running":
        return f"Up {human_duration(_since(state.started))}"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {human_duration(_since(state.finished))} ago"
    if state.status == "restarting":
        return f"Restarting ({state.exit_code}) {human_duration(_since(state.finished))} ago"
    return "Created"


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def published(c: Container, state: State) -> list[PublishedPort]:
    if state.status != "running":
        return []
    ports = [PublishedPort.from_dict(p) for p in state.ports]
    bound = {(p.private_port, p.protocol) for p in ports}
    for item in c.spec.exposed_ports:
        number, _, proto = item.partition("/")
        if number.isdigit() and (int(number), proto) not in bound:
            ports.append(PublishedPort(int(number), proto))
    return ports


class Row(dict[str, Any]):
    """One container as `--format` sees it: Docker's container context fields."""

    def __init__(self, c: Container, state: State, trunc: bool, size: str = "0B") -> None:
        created = parse_time(state.created) if state.created else 0.0
        labels = c.spec.labels
        mounts = [m.volume or m.source for m in c.spec.mounts]
        super().__init__(
            ID=c.id[:12] if trunc else c.id,
            Image=c.spec.image,
            Command=ps_command(c.spec.process.args, truncate=trunc),
            CreatedAt=time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
            RunningFor=f"{human_duration(_since(state.created))} ago",
            Ports=display_ports(published(c, state)),
            State=state.status,
            Status=status_text(state),
            Size=size,
            Names=c.name,
            Labels=",".join(f"{k}={v}" for k, v in labels.items()),
            Label=lambda key: labels.get(key, ""),
            Mounts=",".join(_ellipsis(m, 15) if trunc else m for m in mounts),
            LocalVolumes=str(sum(1 for m in c.spec.mounts if m.kind == "volume")),
            Networks=c.spec.network_name or ("bridge" if c.spec.network == "private" else c.spec.network),
        )

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.items() if not callable(v)}


def _matches(
    c: Container, state: State, filters: dict[str, list[str]], ancestors: set[str], order: dict[str, int]
) -> bool:
    checks: dict[str, Callable[[str], bool]] = {
        "status": lambda v: state.status == v,
        "name": lambda v: re.search(v, "/" + c.name) is not None,
        "id": lambda v: c.id.startswith(v),
        "label": lambda v: _label_matches(c.spec.labels, v),
        "ancestor": lambda v: c.spec.image_id in ancestors or c.spec.image == v,
        "exited": lambda v: state.status == "exited" and bool(state.started) and state.exit_code == int(v),
        "before": lambda v: v in order and order[c.id] > order[v],
        "since": lambda v: v in order and order[c.id] < order[v],
        "volume": lambda v: any(v in (m.volume, m.source, m.target) for m in c.spec.mounts),
        "network": lambda v: (
            v == (c.spec.network_name or ("bridge" if c.spec.network == "private" else c.spec.network))
        ),
        "publish": lambda v: any(_port_matches(v, p.public_port, p.protocol) for p in published(c, state) if p.ip),
        "expose": lambda v: any(_port_matches(v, p.private_port, p.protocol) for p in published(c, state)),
    }
    return all(any(checks[key](v) for v in values) for key, values in filters.items())


def _label_matches(labels: dict[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _port_matches(wanted: str, port: int, protocol: str) -> bool:
    number, _, proto = wanted.partition("/")
    first, _, last = number.partition("-")
    try:
        in_range = int(first) <= port <= int(last or first)
    except ValueError:
        return False
    return in_range and (proto or "tcp") == protocol


def _ancestor_ids(root: Path, refs: list[str]) -> set[str]:
    from runtime.images import ImageError, ImageStore

    store = ImageStore(root)
    ids: set[str] = set()
    for ref in refs:
        try:
            image = store.resolve(ref)
        except ImageError:
            continue
        if image is not None:
            ids.add(image.id)
    return ids


def select(root: Path, args: argparse.Namespace) -> list[tuple[Container, State]]:
    filters = parse_filters(args.filter)
    containers = ContainerStore(root).list()  # newest first
    order = {c.id: i for i, c in enumerate(containers)}
    for key in ("before", "since"):
        for value in filters.get(key, []):
            match = next((c for c in containers if c.id.startswith(value) or c.name == value), None)
            if match is None:
                raise FilterError(f"No such container: {value}")
            order[value] = order[match.id]
    ancestors = _ancestor_ids(root, filters.get("ancestor", []))
    show_all = args.all or "status" in filters or "exited" in filters or args.last > 0 or args.latest
    result = []
    for c in containers:
        state = c.state()
        if not show_all and state.status not in ("running", "restarting"):
            continue
        if _matches(c, state, filters, ancestors, order):
            result.append((c, state))
    if args.latest:
        result = result[:1]
    elif args.last > 0:
        result = result[: args.last]
    return result


def _sizes(root: Path, containers: list[Container]) -> dict[str, str]:
    """`ps -s`: the container layer, and with the image under it (Docker's "virtual" size)."""
    from runtime.commands.system import directory_size, human_size
    from runtime.images import ImageStore

    store = ImageStore(root)
    image_sizes = {i.id: store.size(i) for i in store.list()}
    result = {}
    for c in containers:
        own = directory_size(c.dir / "upper")
        virtual = own + image_sizes.get(c.spec.image_id, 0)
        result[c.id] = f"{human_size(own, 3)} (virtual {human_size(virtual, 3)})"
    return result


def cmd_ps(args: argparse.Namespace) -> int:
    from runtime.images import default_root
    from runtime.listformat import TemplateError, render_rows

    try:
        selected = select(default_root(), args)
    except FilterError as exc:
        print(f"Error response from daemon: {exc}", file=sys.stderr)
        return 1
    trunc = not args.no_trunc
    if args.quiet:
        fmt = "{{.ID}}"
    else:
        fmt = args.format or (DEFAULT_FORMAT + "\t{{.Size}}" if args.size else DEFAULT_FORMAT)
    if fmt == "table":
        fmt = DEFAULT_FORMAT
    sizes = _sizes(default_root(), [c for c, _ in selected]) if args.size else {}
    rows = [Row(c, state, trunc, sizes.get(c.id, "0B")) for c, state in selected]
    try:
        sys.stdout.write(render_rows(fmt, rows, HEADERS, Row.as_json))
    except TemplateError as exc:
        print(f"template parsing error: {exc}", file=sys.stderr)
        return 1
    return 0
