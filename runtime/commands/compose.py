"""`dockyard compose [-f FILE]... [-p PROJECT] COMMAND`: config, up, down, ps, logs, exec, build,
pull, restart, stop, start, over runtime/compose/."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.compose.project import Project

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compose = subparsers.add_parser("compose", help="Define and run multi-container applications")
    compose.add_argument("-f", "--file", action="append", default=[], dest="files")
    compose.add_argument("-p", "--project-name", dest="project")
    sub = compose.add_subparsers(dest="compose_command", metavar="COMMAND", required=True)
    config = sub.add_parser("config", help="Validate and view the Compose file")
    config.add_argument("-q", "--quiet", action="store_true", help="only validate")
    config.add_argument("--services", action="store_true", help="print the service names")
    config.set_defaults(func=cmd_config)

    up = sub.add_parser("up", help="Create and start containers")
    up.add_argument("-d", "--detach", action="store_true")
    up.add_argument("--build", action="store_true", help="build images before starting containers")
    up.add_argument("-t", "--timeout", type=float, default=None, help="stop timeout on Ctrl-C (seconds)")
    up.add_argument("services", nargs="*", metavar="SERVICE")
    up.set_defaults(func=_runtime(cmd_up))

    down = sub.add_parser("down", help="Stop and remove containers and networks")
    down.add_argument("-v", "--volumes", action="store_true", help="remove named and anonymous volumes too")
    down.add_argument("-t", "--timeout", type=float, default=None)
    down.set_defaults(func=_runtime(cmd_down))

    ps = sub.add_parser("ps", help="List containers")
    ps.add_argument("-q", "--quiet", action="store_true")
    ps.add_argument("--services", action="store_true")
    ps.add_argument("-a", "--all", action="store_true", help="accepted; stopped containers are always listed")
    ps.add_argument("services_", nargs="*", metavar="SERVICE")
    ps.set_defaults(func=_runtime(cmd_ps))

    logs = sub.add_parser("logs", help="View output from containers")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--no-log-prefix", action="store_true")
    logs.add_argument("services", nargs="*", metavar="SERVICE")
    logs.set_defaults(func=_runtime(cmd_logs))

    exec_ = sub.add_parser("exec", help="Execute a command in a running container")
    exec_.add_argument("-T", dest="no_tty", action="store_true", help="do not allocate a TTY")
    exec_.add_argument("-e", "--env", action="append", default=[])
    exec_.add_argument("-u", "--user")
    exec_.add_argument("-w", "--workdir")
    exec_.add_argument("service")
    exec_.add_argument("cmd", metavar="COMMAND", nargs=argparse.REMAINDER)
    exec_.set_defaults(func=_runtime(cmd_exec))

    build = sub.add_parser("build", help="Build or rebuild services")
    build.add_argument("--no-cache", action="store_true")
    build.add_argument("--pull", action="store_true")
    build.add_argument("services", nargs="*", metavar="SERVICE")
    build.set_defaults(func=_runtime(cmd_build))

    pull = sub.add_parser("pull", help="Pull service images")
    pull.add_argument("services", nargs="*", metavar="SERVICE")
    pull.set_defaults(func=_runtime(cmd_pull))

    for verb, text in (("stop", "Stop services"), ("start", "Start services"), ("restart", "Restart services")):
        p = sub.add_parser(verb, help=text)
        if verb != "start":
            p.add_argument("-t", "--timeout", type=float, default=None)
        p.add_argument("services", nargs="*", metavar="SERVICE")
        p.set_defaults(func=_runtime({"stop": cmd_stop, "start": cmd_start, "restart": cmd_restart}[verb]))


def _load(args: argparse.Namespace) -> Project:
    from runtime.compose.project import load_project

    return load_project(args.files, args.project)


def _runtime(handler: Handler) -> Handler:
    """Root required (as every runtime command); a ComposeError is printed as docker-compose does."""

    def wrapped(args: argparse.Namespace) -> int:
        from runtime.commands.containers import needs_root
        from runtime.compose.validate import ComposeError

        def guarded(a: argparse.Namespace) -> int:
            try:
                return handler(a)
            except ComposeError as exc:
                print(f"ERROR: {exc}", file=sys.stderr)
                return 1

        return needs_root(guarded)(args)

    return wrapped


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from runtime.compose.validate import ComposeError

    try:
        project = _load(args)
    except ComposeError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    if args.quiet:
        return 0
    if args.services:
        print("\n".join(project.services()))
        return 0
    sys.stdout.write(yaml.safe_dump(project.config, default_flow_style=False, sort_keys=True))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from runtime.compose import engine
    from runtime.compose.logs import follow

    project = _load(args)
    try:
        started = engine.up(project, args.services or None, build_first=args.build)
    except KeyboardInterrupt:
        print("Aborting.", file=sys.stderr)
        return 130
    if args.detach:
        return 0
    print("Attaching to " + ", ".join(c.name for c in started), flush=True)
    stopping = threading.Event()

    def interrupt(_signum: int, _frame: object) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt
        stopping.set()

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        follow(
            started,
            list(project.services()),
            keep_going=True,
            stop=stopping,
            on_exit=lambda c: print(f"{c.name} exited with code {engine.wait_exit(c)}", flush=True),
        )
        if stopping.is_set():
            print("Gracefully stopping... (press Ctrl+C again to force)", flush=True)
            engine.stop(project, args.services or None, args.timeout)
    except KeyboardInterrupt:
        engine.stop(project, args.services or None, 0)
    finally:
        signal.signal(signal.SIGINT, previous)
    return 130 if stopping.is_set() else 0


def cmd_down(args: argparse.Namespace) -> int:
    from runtime.compose import engine

    engine.down(_load(args), volumes=args.volumes, timeout=args.timeout)
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from runtime.commands.ps import published
    from runtime.compose import engine
    from runtime.compose.names import SERVICE
    from runtime.ports import display_ports

    project = _load(args)
    found = engine.containers(project, args.services_ or None)
    if args.services:
        print("\n".join(dict.fromkeys(c.spec.labels[SERVICE] for c in found)))
        return 0
    if args.quiet:
        print("\n".join(c.id for c in found) if found else "", end="\n" if found else "")
        return 0
    rows = [("Name", "Command", "State", "Ports")]
    for c in sorted(found, key=lambda c: c.name):  # as docker-compose 1.29
        state = c.state()
        status = {"running": "Up", "restarting": "Restarting", "created": "Created"}.get(
            state.status, f"Exit {state.exit_code}"
        )
        command = " ".join([*(c.spec.entrypoint or ()), *(c.spec.cmd or ())])
        if len(command) > 30:
            command = command[:26] + " ..."
        rows.append((c.name, command, status, display_ports(published(c, state)) if status == "Up" else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    print("\n".join(lines))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from runtime.compose import engine
    from runtime.compose.logs import follow

    project = _load(args)
    found = engine.containers(project, args.services or None)
    stopping = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda _s, _f: stopping.set())
    try:
        follow(found, list(project.services()), keep_going=args.follow, stop=stopping, prefix=not args.no_log_prefix)
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    from runtime.commands.exec import run_exec
    from runtime.compose import engine
    from runtime.compose.validate import ComposeError

    project = _load(args)
    if args.service not in project.services():
        raise ComposeError(f"No such service: {args.service}")
    found = engine.containers(project, [args.service])
    if not found or found[0].state().status != "running":
        raise ComposeError(f"Service {args.service} is not running")
    tty = sys.stdin.isatty() and sys.stdout.isatty() and not args.no_tty
    exec_args = argparse.Namespace(
        container=found[0].id,
        cmd=args.cmd,
        user=args.user,
        env=args.env,
        workdir=args.workdir,
        tty=tty,
        interactive=True,  # compose exec always passes stdin on, as `exec -i`
    )
    return run_exec(exec_args)


def cmd_build(args: argparse.Namespace) -> int:
    from runtime.compose import engine

    engine.build(_load(args), args.services or None, no_cache=args.no_cache, pull=args.pull)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from runtime.compose import engine

    engine.pull(_load(args), args.services or None)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from runtime.compose import engine

    engine.stop(_load(args), args.services or None, args.timeout)
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from runtime.compose import engine

    engine.start(_load(args), args.services or None)
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    from runtime.compose import engine

    engine.restart(_load(args), args.services or None, args.timeout)
    return 0
