"""`restart`, `wait`, `rename`, `port`, `top` and `stats`, with Docker's output."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runtime import cgroups
from runtime.cgroups.factory import open_manager
from runtime.containers import Container, ContainerError, ContainerStore
from runtime.ports import PublishedPort

__all__ = ["cmd_port", "cmd_rename", "cmd_restart", "cmd_stats", "cmd_top", "cmd_wait"]

STATS_FORMAT = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
)
STATS_HEADERS = {
    "ID": "CONTAINER ID",
    "Container": "CONTAINER",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
_SAMPLE = 0.5  # seconds between the two readings a CPU percentage needs


def _store() -> ContainerStore:
    from runtime.images import default_root

    return ContainerStore(default_root())


def cmd_restart(args: argparse.Namespace) -> int:
    from runtime import container as lifecycle

    store = _store()
    code = 0
    for name in args.containers:
        try:
            c = store.get(name)
            lifecycle.stop(c, args.time)
            outcome, sock = lifecycle.start(store, c)
            sock.close()
            if not outcome.started:
                raise ContainerError(f"failed to start container {c.name}: {outcome.error}")
            print(name)
        except ContainerError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            code = 1
    return code


def _exit_code(c: Container) -> int:
    """Blocks until `c` is not running. Attached, the supervisor's EXIT frame carries the code
    even when `--rm` removes the container at once; otherwise the recorded state does."""
    from runtime import container as lifecycle
    from runtime.attach import Kind, read_frame

    if c.state().status == "running":
        try:
            sock = lifecycle.attach(c)
        except ContainerError:
            sock = None
        if sock is not None:
            with sock:
                while (frame := read_frame(sock)) is not None:
                    if frame.kind == Kind.EXIT:
                        return int(frame.payload)
    while c.state().status == "running":
        time.sleep(0.05)
    return c.state().exit_code


def cmd_wait(args: argparse.Namespace) -> int:
    store = _store()
    code = 0
    for name in args.containers:
        try:
            c = store.get(name)
        except ContainerError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            code = 1
            continue
        print(_exit_code(c), flush=True)
    return code


def cmd_rename(args: argparse.Namespace) -> int:
    from runtime.validate import NAME

    store = _store()
    c = store.get(args.container)
    new = args.new_name.lstrip("/")
    if not NAME.match(new):
        raise ContainerError(f"Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if new == c.name:
        raise ContainerError("Renaming a container with the same name as its current name")
    store.rename(c, new)
    return 0


def _port_key(item: str) -> tuple[int, str]:
    number, _, proto = item.partition("/")
    return (int(number) if number.isdigit() else 0, proto)


def cmd_port(args: argparse.Namespace) -> int:
    c = _store().get(args.container)
    state = c.state()
    published = [PublishedPort.from_dict(p) for p in state.ports] if state.status == "running" else []

    def address(p: PublishedPort) -> str:
        return f"[{p.ip}]:{p.public_port}" if ":" in p.ip else f"{p.ip}:{p.public_port}"

    if args.port:
        number, _, proto = args.port.partition("/")
        proto = proto or "tcp"
        found = [p for p in published if str(p.private_port) == number and p.protocol == proto]
        if not found:
            raise ContainerError(f"No public port '{number}/{proto}' published for {args.container}")
        for p in found:
            print(address(p))
        return 0
    lines = sorted(published, key=lambda p: (p.private_port, p.protocol, p.ip))
    for p in lines:
        print(f"{p.private_port}/{p.protocol} -> {address(p)}")
    return 0


def _running(c: Container) -> cgroups.CgroupManager:
    state = c.state()
    if state.status != "running" or not state.cgroup:
        raise ContainerError(f"container {c.id} is not running")
    return open_manager(state.cgroup)


def cmd_top(args: argparse.Namespace) -> int:
    """Docker's top: the host's `ps` (default `-ef`), keeping the container's processes."""
    from runtime.listformat import tabwrite

    c = _store().get(args.container)
    pids = {str(p) for p in _running(c).pids()}
    options = args.ps_args or ["-ef"]
    result = subprocess.run(["ps", *options], capture_output=True, text=True)
    if result.returncode != 0:
        raise ContainerError(f"ps: {result.stderr.strip() or 'failed'}")
    lines = result.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise ContainerError("Couldn't find PID field in ps output")
    column = header.index("PID")
    rows = ["\t".join(header)]
    for line in lines[1:]:
        fields = line.split(None, len(header) - 1)
        if len(fields) > column and fields[column] in pids:
            rows.append("\t".join(fields))
    sys.stdout.write(tabwrite("\n".join(rows) + "\n", min_width=20))
    return 0


def _binary(size: float) -> str:
    """go-units BytesSize: `%.4g` of binary units."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.4g}{unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _decimal(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.3g}{unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _net_io(pid: int) -> tuple[int, int]:
    """Bytes received and sent on the container's interfaces other than loopback."""
    rx = tx = 0
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, data = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = data.split()
        rx, tx = rx + int(fields[0]), tx + int(fields[8])
    return rx, tx


def _stats_row(c: Container, before: cgroups.Stats, after: cgroups.Stats, elapsed: float) -> dict[str, Any]:
    limit = c.spec.resources.memory or _host_memory()
    cpu = (after.cpu_usage_ns - before.cpu_usage_ns) / (elapsed * 1e9) * 100 if elapsed > 0 else 0.0
    rx, tx = _net_io(c.state().pid)
    mem = after.memory_usage
    return {
        "ID": c.id[:12],
        "Container": c.id[:12],
        "Name": c.name,
        "CPUPerc": f"{cpu:.2f}%",
        "MemUsage": f"{_binary(mem)} / {_binary(limit)}",
        "MemPerc": f"{mem / limit * 100 if limit else 0:.2f}%",
        "NetIO": f"{_decimal(rx)} / {_decimal(tx)}",
        "BlockIO": f"{_decimal(0)} / {_decimal(0)}",
        "PIDs": str(after.pids_current),
    }


def cmd_stats(args: argparse.Namespace) -> int:
    """One reading of each container (`--no-stream`; streaming is not offered)."""
    from runtime.listformat import TemplateError, render_rows

    store = _store()
    if args.containers:
        chosen = [store.get(n) for n in args.containers]
    else:
        chosen = [c for c in store.list() if args.all or c.state().status == "running"]
    managers: list[tuple[Container, cgroups.CgroupManager | None]] = []
    for c in chosen:
        try:
            managers.append((c, _running(c)))
        except (ContainerError, OSError):
            managers.append((c, None))
    first = {c.id: m.stats() for c, m in managers if m is not None}
    start = time.monotonic()
    if first:
        time.sleep(_SAMPLE)
    elapsed = time.monotonic() - start
    rows = []
    for c, m in managers:
        if m is None:
            rows.append({**dict.fromkeys(STATS_HEADERS, "--"), "ID": c.id[:12], "Container": c.id[:12],
                         "Name": c.name, "CPUPerc": "0.00%", "MemUsage": "0B / 0B", "MemPerc": "0.00%",
                         "NetIO": "0B / 0B", "BlockIO": "0B / 0B", "PIDs": "0"})  # fmt: skip
            continue
        try:
            rows.append(_stats_row(c, first[c.id], m.stats(), elapsed))
        except OSError:
            continue
    try:
        sys.stdout.write(render_rows(args.format or STATS_FORMAT, rows, STATS_HEADERS))
    except TemplateError as exc:
        print(f"template parsing error: {exc}", file=sys.stderr)
        return 1
    return 0
