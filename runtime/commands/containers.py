"""Container commands: run, ps, stop, start, kill, rm, container prune, logs, exec, inspect, attach, volume."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.containers import Container, ContainerError, ContainerStore

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def _root() -> Path:
    from runtime.images import default_root

    return default_root()


def _needs_root(handler: Handler) -> Handler:
    def wrapped(args: argparse.Namespace) -> int:
        if sys.platform != "linux" or os.geteuid() != 0:
            print("dockyard: the container runtime needs root on Linux (namespaces, cgroups, mounts)", file=sys.stderr)
            return 1
        try:
            _revive()
            return handler(args)
        except (ContainerError, ValueError) as exc:
            print(f"dockyard: {exc}", file=sys.stderr)
            return 125 if args.command == "run" else 1

    return wrapped


def _revive() -> None:
    """Containers with a restart policy whose supervisor is gone come back with the next command."""
    from runtime.revive import revive

    revive(ContainerStore(_root()))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from runtime.commands.run import add_run_arguments

    run = subparsers.add_parser("run", help="Create and run a new container from an image", add_help=False)
    run.add_argument("--help", action="help")
    add_run_arguments(run)
    run.set_defaults(func=_needs_root(cmd_run))

    ps = subparsers.add_parser("ps", help="List containers")
    _ps_arguments(ps)
    ps.set_defaults(func=_needs_root(cmd_ps))

    stop = subparsers.add_parser("stop", help="Stop one or more running containers")
    stop.add_argument("-t", "--time", type=float, default=10.0)
    stop.add_argument("containers", nargs="+")
    stop.set_defaults(func=_needs_root(cmd_stop))

    start = subparsers.add_parser("start", help="Start one or more stopped containers")
    start.add_argument("-a", "--attach", action="store_true")
    start.add_argument("-i", "--interactive", action="store_true")
    start.add_argument("containers", nargs="+")
    start.set_defaults(func=_needs_root(cmd_start))

    kill = subparsers.add_parser("kill", help="Kill one or more running containers")
    kill.add_argument("-s", "--signal", default="KILL")
    kill.add_argument("containers", nargs="+")
    kill.set_defaults(func=_needs_root(cmd_kill))

    rm = subparsers.add_parser("rm", help="Remove one or more containers")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("-v", "--volumes", action="store_true")
    rm.add_argument("containers", nargs="+")
    rm.set_defaults(func=_needs_root(cmd_rm))

    container = subparsers.add_parser("container", help="Manage containers")
    csub = container.add_subparsers(dest="container_command", metavar="COMMAND", required=True)
    prune = csub.add_parser("prune", help="Remove all stopped containers")
    prune.add_argument("-f", "--force", action="store_true")
    prune.set_defaults(func=_needs_root(cmd_prune))
    ls = csub.add_parser("ls", help="List containers")
    _ps_arguments(ls)
    ls.set_defaults(func=_needs_root(cmd_ps))

    logs = subparsers.add_parser("logs", help="Fetch the logs of a container")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-t", "--timestamps", action="store_true")
    logs.add_argument("container")
    logs.set_defaults(func=_needs_root(cmd_logs))

    exec_ = subparsers.add_parser("exec", help="Execute a command in a running container")
    exec_.add_argument("-i", "--interactive", action="store_true")
    exec_.add_argument("-t", "--tty", action="store_true")
    exec_.add_argument("-e", "--env", action="append", default=[])
    exec_.add_argument("-u", "--user")
    exec_.add_argument("-w", "--workdir")
    exec_.add_argument("container")
    exec_.add_argument("cmd", metavar="COMMAND", nargs=argparse.REMAINDER)
    exec_.set_defaults(func=_needs_root(cmd_exec))

    inspect = subparsers.add_parser("inspect", help="Return low-level information on containers or images")
    inspect.add_argument("names", nargs="+")
    inspect.set_defaults(func=_needs_root(cmd_inspect))

    attach = subparsers.add_parser("attach", help="Attach to a running container's input and output")
    attach.add_argument("--no-stdin", action="store_true")
    attach.add_argument("--detach-keys")
    attach.add_argument("container")
    attach.set_defaults(func=_needs_root(cmd_attach))

    from runtime.commands.volume import register as register_volume

    register_volume(subparsers, _needs_root)


def cmd_exec(args: argparse.Namespace) -> int:
    from runtime.commands.exec import run_exec

    return run_exec(args)


def _ps_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")


def cmd_run(args: argparse.Namespace) -> int:
    from runtime.attach import parse_detach_keys
    from runtime.commands.run import build_spec, run_attached
    from runtime.ensure import ensure_image
    from runtime.images import ImageError, ImageStore
    from runtime.volumes import VolumeStore

    root = _root()
    try:
        image = ensure_image(ImageStore(root), args.image, args.platform)
    except ImageError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 125
    store = ContainerStore(root)
    spec = build_spec(args, image, store, VolumeStore(root))
    detach_keys = parse_detach_keys(args.detach_keys) if args.detach_keys else None
    container = store.create(spec)
    return run_attached(store, container, args.detach, args.interactive, args.tty, detach_keys)


def _ago(timestamp: str) -> str:
    """The bare duration since `timestamp` ("13 seconds"), as Docker's ps columns use it."""
    from runtime.commands.humanize import human_duration, since

    seconds = since(timestamp) if timestamp else None
    return "" if seconds is None else human_duration(max(0.0, seconds))


def _status(c: Container) -> str:
    state = c.state()
    if state.status == "running":
        return f"Up {_ago(state.started)}"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {_ago(state.finished)} ago"
    if state.status == "restarting":
        return f"Restarting ({state.exit_code}) {_ago(state.finished)} ago"
    return "Created"


def cmd_ps(args: argparse.Namespace) -> int:
    from runtime.commands.humanize import ps_command

    containers = [
        c for c in ContainerStore(_root()).list() if args.all or c.state().status in ("running", "restarting")
    ]
    if args.quiet:
        for c in containers:
            print(c.id if args.no_trunc else c.id[:12])
        return 0
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")]
    for c in containers:
        command = ps_command(c.spec.process.args, truncate=not args.no_trunc)
        ports = ", ".join(f"{p.host_ip}:{p.host_port}->{p.container_port}/tcp" for p in c.spec.ports)
        if c.state().status != "running":
            ports = ""  # as Docker: only a running container's ports are published
        rows.append(
            (
                c.id if args.no_trunc else c.id[:12],
                c.spec.image,
                command,
                f"{_ago(c.state().created)} ago",
                _status(c),
                ports,
                c.name,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _each(names: list[str], action: Callable[[ContainerStore, Container], None]) -> int:
    store = ContainerStore(_root())
    failed = 0
    for name in names:
        try:
            action(store, store.get(name))
            print(name)
        except ContainerError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            failed = 1
    return failed


def cmd_stop(args: argparse.Namespace) -> int:
    from runtime import container as lifecycle

    return _each(args.containers, lambda _s, c: lifecycle.stop(c, args.time))


def cmd_kill(args: argparse.Namespace) -> int:
    from runtime import container as lifecycle

    sig = lifecycle.parse_signal(args.signal)
    return _each(args.containers, lambda _s, c: lifecycle.kill(c, sig))


def cmd_rm(args: argparse.Namespace) -> int:
    from runtime import container as lifecycle

    return _each(args.containers, lambda s, c: lifecycle.remove(s, c, args.force, args.volumes))


def cmd_start(args: argparse.Namespace) -> int:
    from runtime import container as lifecycle
    from runtime.commands.run import run_attached

    store = ContainerStore(_root())
    if args.attach:
        c = store.get(args.containers[0])
        return run_attached(store, c, False, args.interactive, c.spec.process.terminal)

    def start(s: ContainerStore, c: Container) -> None:
        if c.state().status in ("running", "restarting"):
            return
        outcome, sock = lifecycle.start(s, c)
        sock.close()
        if not outcome.started:
            raise ContainerError(f"failed to start container {c.name}: {outcome.error}")

    return _each(args.containers, start)


def cmd_prune(args: argparse.Namespace) -> int:
    from runtime import container as lifecycle
    from runtime.commands.confirm import confirm, reclaimed
    from runtime.volumes import directory_size

    if not args.force and not confirm("WARNING! This will remove all stopped containers."):
        return 0
    store = ContainerStore(_root())
    deleted, size = [], 0
    for c in store.list():
        if c.state().status not in ("running", "restarting"):
            size += directory_size(c.dir / "upper")
            lifecycle.remove(store, c)
            deleted.append(c.id)
    if deleted:
        print("Deleted Containers:\n" + "".join(f"{cid}\n" for cid in deleted))
    print(reclaimed(size))
    return 0


def _print_log_line(line: str, timestamps: bool) -> None:
    try:
        record = json.loads(line)
    except ValueError:
        return
    stream = sys.stdout if record.get("stream") == "stdout" else sys.stderr
    text = record.get("log", "")
    if timestamps:
        text = f"{record.get('time', '')} {text}"
    stream.write(text)
    stream.flush()


def cmd_logs(args: argparse.Namespace) -> int:
    c = ContainerStore(_root()).get(args.container)
    try:
        f = open(c.log_path)
    except FileNotFoundError:
        if not args.follow:
            return 0
        f = None
    while f is None:
        if c.state().status != "running":
            return 0
        time.sleep(0.1)
        try:
            f = open(c.log_path)
        except FileNotFoundError:
            continue
    with f:
        pending = ""
        while True:
            chunk = f.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    _print_log_line(pending, args.timestamps)
                    pending = ""
                continue
            if not args.follow or c.state().status != "running":
                # One more read: the supervisor writes the last lines before recording the exit.
                for line in f:
                    _print_log_line(pending + line, args.timestamps)
                    pending = ""
                return 0
            time.sleep(0.05)


def _inspect_container(c: Container) -> dict[str, Any]:
    state, spec = c.state(), c.spec
    return {
        "Id": c.id,
        "Created": state.created,
        "Path": spec.process.args[0],
        "Args": list(spec.process.args[1:]),
        "State": {
            "Status": state.status,
            "Running": state.status == "running",
            "Restarting": state.status == "restarting",
            "Pid": state.pid if state.status == "running" else 0,
            "ExitCode": state.exit_code,
            "OOMKilled": state.oom_killed,
            "Error": state.error,
            "StartedAt": state.started,
            "FinishedAt": state.finished,
        },
        "Image": spec.image_id,
        "Name": "/" + spec.name,
        "LogPath": str(c.log_path),
        "RestartCount": state.restart_count,
        "HostConfig": {
            "Binds": [f"{m.volume or m.source}:{m.target}{':ro' if m.readonly else ''}" for m in spec.mounts],
            "NetworkMode": spec.network,
            "PortBindings": {
                f"{p.container_port}/tcp": [{"HostIp": p.host_ip, "HostPort": str(p.host_port)}] for p in spec.ports
            },
            "AutoRemove": spec.auto_remove,
            "ReadonlyRootfs": spec.readonly_rootfs,
            "Init": spec.init,
            "RestartPolicy": {"Name": spec.restart.name, "MaximumRetryCount": spec.restart.max_retries},
            "Tmpfs": {t.target: t.options for t in spec.tmpfs},
            "ExtraHosts": list(spec.extra_hosts),
            "Dns": list(spec.dns),
            "DnsSearch": list(spec.dns_search),
            "DnsOptions": list(spec.dns_options),
            "Ulimits": [{"Name": r.name, "Soft": r.soft, "Hard": r.hard} for r in spec.process.rlimits],
            "Memory": spec.resources.memory or 0,
            "NanoCpus": (spec.resources.cpu_quota or 0) * 1_000_000_000 // spec.resources.cpu_period,
            "PidsLimit": spec.resources.pids,
        },
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": ":".join(reversed(spec.layers)),
                "UpperDir": str(c.dir / "upper"),
                "WorkDir": str(c.dir / "work"),
            },
        },
        "Mounts": [
            {"Type": m.kind, "Name": m.volume, "Source": m.source, "Destination": m.target, "RW": not m.readonly}
            for m in spec.mounts
        ],
        "Config": {
            "Hostname": spec.hostname,
            "User": spec.user,
            "Tty": spec.process.terminal,
            "OpenStdin": spec.process.stdin,
            "Env": list(spec.process.env),
            "Cmd": list(spec.process.args),
            "Image": spec.image,
            "WorkingDir": spec.process.cwd,
        },
        "Cgroup": state.cgroup,
    }


def cmd_inspect(args: argparse.Namespace) -> int:
    from runtime.images import ImageError, ImageStore

    store = ContainerStore(_root())
    results: list[dict[str, Any]] = []
    code = 0
    for name in args.names:
        try:
            results.append(_inspect_container(store.get(name)))
            continue
        except ContainerError:
            pass
        try:
            results.append(ImageStore(_root()).inspect(name))
        except (ImageError, KeyError, ValueError):
            print(f"Error: No such object: {name}", file=sys.stderr)
            code = 1
    print(json.dumps(results, indent=4))
    return code


def cmd_attach(args: argparse.Namespace) -> int:
    from runtime import container as lifecycle
    from runtime.attach import DEFAULT_DETACH_KEYS, Detached, parse_detach_keys, relay

    c = ContainerStore(_root()).get(args.container)
    keys = parse_detach_keys(args.detach_keys) if args.detach_keys else DEFAULT_DETACH_KEYS
    sock = lifecycle.attach(c)
    try:
        # Docker's attach leaves the container's stdin open at the end of ours.
        stdin = c.spec.process.stdin and not args.no_stdin
        code = relay(sock, stdin=stdin, terminal=c.spec.process.terminal, close_stdin=False, detach_keys=keys)
    except Detached:
        print("read escape sequence", file=sys.stderr)
        return 1
    finally:
        sock.close()
    if code is None:
        lifecycle.wait_exited(c, 5)
        code = c.state().exit_code
    return code
