"""Container commands: run, ps, stop, start, kill, rm, container prune, logs, exec, inspect, attach, volume."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

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
            return 125 if args.command in ("run", "create") else 1

    return wrapped


def _revive() -> None:
    """Containers with a restart policy whose supervisor is gone come back with the next command."""
    from runtime.revive import revive

    revive(ContainerStore(_root()))


needs_root = _needs_root


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from runtime.commands.inspect import add_inspect_arguments
    from runtime.commands.ps import add_ps_arguments
    from runtime.commands.run import add_run_arguments

    run = subparsers.add_parser("run", help="Create and run a new container from an image", add_help=False)
    run.add_argument("--help", action="help")
    add_run_arguments(run)
    run.set_defaults(func=_needs_root(cmd_run))

    ps = subparsers.add_parser("ps", help="List containers")
    add_ps_arguments(ps)
    ps.set_defaults(func=_needs_root(_lazy("runtime.commands.ps", "cmd_ps")))

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
    ls = csub.add_parser("ls", aliases=["ps", "list"], help="List containers")
    add_ps_arguments(ls)
    ls.set_defaults(func=_needs_root(_lazy("runtime.commands.ps", "cmd_ps")))

    logs = subparsers.add_parser("logs", help="Fetch the logs of a container")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-t", "--timestamps", action="store_true")
    logs.add_argument("-n", "--tail", default="all")
    logs.add_argument("--since", default="")
    logs.add_argument("--until", default="")
    logs.add_argument("container")
    logs.set_defaults(func=_needs_root(_lazy("runtime.commands.logs", "cmd_logs")))

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
    add_inspect_arguments(inspect)
    inspect.set_defaults(func=_needs_root(_lazy("runtime.commands.inspect", "cmd_inspect")))

    attach = subparsers.add_parser("attach", help="Attach to a running container's input and output")
    attach.add_argument("--no-stdin", action="store_true")
    attach.add_argument("--detach-keys")
    attach.add_argument("container")
    attach.set_defaults(func=_needs_root(cmd_attach))

    from runtime.commands.volume import register as register_volume

    register_volume(subparsers, _needs_root)


def _lazy(module: str, name: str) -> Handler:
    """A handler imported when the command runs, so parsing `dockyard` stays cheap."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        func: Handler = getattr(importlib.import_module(module), name)
        return func(args)

    return handler


def cmd_exec(args: argparse.Namespace) -> int:
    from runtime.commands.exec import run_exec

    return run_exec(args)


def cmd_run(args: argparse.Namespace) -> int:
    from runtime.attach import parse_detach_keys
    from runtime.commands.create import create_container
    from runtime.commands.run import run_attached

    detach_keys = parse_detach_keys(args.detach_keys) if args.detach_keys else None
    created = create_container(args)
    if created is None:
        return 125
    store, container = created
    return run_attached(store, container, args.detach, args.interactive, args.tty, detach_keys)


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
