"""`dockyard exec`: a new process in a running container's namespaces and cgroup."""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import threading

from runtime import imageconfig
from runtime.cgroups.factory import open_manager
from runtime.containers import ContainerError, ContainerStore
from runtime.spec import ProcessSpec
from runtime.users import UserError, read_from_root, resolve_user

__all__ = ["run_exec"]


def run_exec(args: argparse.Namespace) -> int:
    from runtime.images import default_root
    from runtime.process import ChildError, confinement, spawn_exec

    c = ContainerStore(default_root()).get(args.container)
    state = c.state()
    if state.status != "running":
        raise ContainerError(f"container {c.id} is not running")
    if not args.cmd:
        raise ValueError("exec requires at least 1 argument")
    user = args.user if args.user is not None else c.spec.user
    try:
        info = resolve_user(user, read_from_root(__import__("pathlib").Path(f"/proc/{state.pid}/root")))
    except UserError as exc:
        raise ContainerError(str(exc)) from None
    base = [e for e in c.spec.process.env if not e.startswith("HOME=")]
    env = imageconfig.environment({"Env": base}, args.env, c.spec.hostname, info.home, args.tty)
    process = ProcessSpec(
        tuple(args.cmd),
        tuple(env),
        args.workdir or c.spec.process.cwd,
        info.uid,
        info.gid,
        info.groups,
        args.tty,
        args.interactive,
        c.spec.process.rlimits,
    )
    manager = open_manager(state.cgroup) if state.cgroup else None

    def join(pid: int) -> None:
        if manager is not None:
            manager.add(pid)

    stdin = sys.stdin.fileno() if args.interactive else os.open(os.devnull, os.O_RDONLY)
    try:
        # The same capabilities and seccomp filter as the container's first process.
        confine = confinement(c.spec.security, bool(state.cgroup.get("device_filter", True)), c.seccomp_cache)
        launched = spawn_exec(state.pid, process, None if args.tty else (stdin, 1, 2), join, confine)
    except ChildError as exc:
        print(f"dockyard: OCI runtime exec failed: {exc}", file=sys.stderr)
        return exc.code
    if launched.pty is None:
        return _wait(launched.pid)
    return _relay_pty(launched.pid, launched.pty, args.interactive)


def _wait(pid: int) -> int:
    from runtime.process import exit_code

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    _, status = os.waitpid(pid, 0)
    return exit_code(status)


def _relay_pty(pid: int, master: int, interactive: bool) -> int:
    import termios
    import tty

    from runtime.process import exit_code, set_winsize, winsize

    in_fd = sys.stdin.fileno()
    saved = None
    if os.isatty(in_fd):
        set_winsize(master, winsize(in_fd))
        signal.signal(signal.SIGWINCH, lambda *_: set_winsize(master, winsize(in_fd)))
        saved = termios.tcgetattr(in_fd)
        tty.setraw(in_fd)
    stop_r, stop_w = os.pipe()

    def pump_in() -> None:
        with contextlib.suppress(OSError):
            while True:
                ready, _, _ = select.select([in_fd, stop_r], [], [])
                if stop_r in ready:
                    return
                data = os.read(in_fd, 65536)
                if not data:
                    return
                os.write(master, data)

    if interactive:
        threading.Thread(target=pump_in, daemon=True).start()
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the last process holding the slave is gone
                break
            if not data:
                break
            os.write(1, data)
        _, status = os.waitpid(pid, 0)
    finally:
        os.write(stop_w, b"x")
        if saved is not None:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
    return exit_code(status)
