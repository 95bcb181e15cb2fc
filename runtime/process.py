"""Starting the container's first process, and `exec` processes, in their namespaces.

The parent forks; the child waits on a sync pipe until the parent has put it into its cgroup,
builds its filesystem, drops privileges and execs. Anything that fails in the child before the
exec is written to an error pipe that is close-on-exec, so EOF there means the exec happened
(the pattern of runc's init pipe)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import socket
import struct
import termios
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from runtime import rlimits, rootfs, seccomp, syscalls
from runtime.namespaces import Namespace
from runtime.security import CAPABILITIES, Security
from runtime.spec import ContainerSpec, ProcessSpec

__all__ = [
    "ChildError",
    "Confinement",
    "Launched",
    "RootfsPaths",
    "confinement",
    "exit_code",
    "spawn_container",
    "spawn_exec",
]


class ChildError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RootfsPaths:
    target: Path  # where the root is assembled
    upper: Path
    work: Path
    copy: Path  # the flattened private copy used when overlayfs is unavailable
    files: dict[str, str] = field(default_factory=dict)  # /etc/hostname etc. -> host file
    cgroups: dict[str, str] = field(default_factory=dict)  # hierarchy under /sys/fs/cgroup -> container's dir


@dataclass(frozen=True)
class Confinement:
    """What the process keeps once it execs: capabilities (bounding set), no_new_privs, and the
    seccomp filter to install."""

    caps: frozenset[int]
    no_new_privileges: bool = False
    filter: seccomp.Filter | None = None


def confinement(security: Security, devices_confined: bool = True, seccomp_cache: Path | None = None) -> Confinement:
    """The confinement for a container with `security`. Without a device filter (no devices
    cgroup), CAP_MKNOD goes: a node the container made could open any host device.
    `seccomp_cache`: the directory keeping compiled filters (see runtime.seccomp).
    Raises seccomp.ProfileError for a profile that cannot be compiled."""
    names = [c for c in security.caps if devices_confined or security.privileged or c != "CAP_MKNOD"]
    bpf = None if security.privileged else seccomp.filter_for(security.seccomp, names, seccomp_cache)
    return Confinement(frozenset(CAPABILITIES[c] for c in names), security.no_new_privileges, bpf)


@dataclass
class Launched:
    pid: int
    pty: int | None = None  # the master side when the process has a terminal
    netns: int | None = None


def exit_code(status: int) -> int:
    """Docker's convention: the exit status, or 128 + the signal that killed the process."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def spawn_container(
    spec: ContainerSpec,
    paths: RootfsPaths,
    stdio: tuple[int, int, int] | None,
    join_cgroup: Callable[[int], None],
    devices_confined: bool = True,
    plug_network: Callable[[], None] | None = None,
    seccomp_cache: Path | None = None,
) -> Launched:
    """Fork the container's PID 1. `stdio` are fds to become its 0, 1, 2; None means a new pty,
    whose master is returned. Unless the network is the host's, the returned `netns` is an open
    descriptor of the container's network namespace, valid even after the container exits.
    `devices_confined` False means no device cgroup could be set up: the root is then nodev.
    `plug_network` runs inside the new network namespace before the PID namespace exists (it may
    fork helpers), so the container's interfaces are there before its process starts."""
    namespaces = [Namespace.MOUNT, Namespace.UTS, Namespace.IPC]
    confine = confinement(spec.security, devices_confined, seccomp_cache)

    def child() -> list[str]:
        syscalls.unshare(sum(ns.flag for ns in namespaces))
        # Mounts made below must not propagate back to the host (mount_namespaces(7)).
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
        socket.sethostname(spec.hostname)
        notes = _mount_root(spec, paths, 0 if devices_confined else syscalls.MS_NODEV)
        if not devices_confined:
            notes.append(
                "dockyard: no device cgroup available (neither the v1 devices controller nor cgroup BPF);"
                " dropping CAP_MKNOD and mounting the root nodev\n"
            )
        rootfs.apply_mounts(paths.target, rootfs.plan_mounts(spec, paths.files, paths.cgroups))
        workdir = rootfs.resolve_in_root(paths.target, spec.process.cwd)
        if not workdir.exists():
            workdir.mkdir(parents=True)
        rootfs.pivot_root(paths.target)
        if spec.readonly_rootfs:
            rootfs.readonly_root()
        return notes

    # PID and network namespaces are created here, in the parent, and entered by the child at
    # fork: a new PID namespace applies only to children forked after unshare(CLONE_NEWPID), and
    # holding the network namespace from the start lets the port forwarder use it however short
    # the container's life. setns(2) back into our own namespaces right after the fork keeps this
    # process where it was (pid_namespaces(7), network_namespaces(7)).
    new = [Namespace.PID] if spec.network == "host" else [Namespace.PID, Namespace.NET]
    own = {ns: os.open(ns.path("thread-self"), os.O_RDONLY | os.O_CLOEXEC) for ns in new}
    netns = None
    try:
        try:
            if Namespace.NET in new:
                syscalls.unshare(Namespace.NET.flag)
                netns = os.open(Namespace.NET.path("thread-self"), os.O_RDONLY | os.O_CLOEXEC)
                from runtime.network import loopback_up

                loopback_up()
                if plug_network is not None:
                    plug_network()
            syscalls.unshare(Namespace.PID.flag)
            launched = _fork(rootfs.init_process(spec), stdio, join_cgroup, child, confine)
        finally:
            for ns, fd in own.items():
                syscalls.setns(fd, ns.flag)
    except BaseException:
        if netns is not None:
            os.close(netns)
        raise
    finally:
        for fd in own.values():
            os.close(fd)
    launched.netns = netns
    return launched


def spawn_exec(
    pid: int,
    process: ProcessSpec,
    stdio: tuple[int, int, int] | None,
    join_cgroup: Callable[[int], None],
    confine: Confinement,
) -> Launched:
    """Fork a process inside the namespaces of the running container whose PID 1 is `pid`."""
    fds = {ns: os.open(ns.path(pid), os.O_RDONLY | os.O_CLOEXEC) for ns in Namespace if ns != Namespace.CGROUP}
    root_fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_CLOEXEC)
    own_pidns = os.open(Namespace.PID.path(), os.O_RDONLY | os.O_CLOEXEC)

    def child() -> list[str]:
        for ns, fd in fds.items():
            if ns not in (Namespace.PID, Namespace.MOUNT) and os.readlink(ns.path(pid)) != os.readlink(ns.path()):
                syscalls.setns(fd, ns.flag)
        syscalls.setns(fds[Namespace.MOUNT], Namespace.MOUNT.flag)
        # setns into a mount namespace leaves the cwd and root where they were (setns(2)).
        os.fchdir(root_fd)
        os.chroot(".")
        return []

    try:
        syscalls.setns(fds[Namespace.PID], Namespace.PID.flag)
        try:
            return _fork(process, stdio, join_cgroup, child, confine)
        finally:
            syscalls.setns(own_pidns, Namespace.PID.flag)
    finally:
        for fd in (*fds.values(), root_fd, own_pidns):
            os.close(fd)


def _mount_root(spec: ContainerSpec, paths: RootfsPaths, flags: int) -> list[str]:
    layers = list(spec.layers)
    notes: list[str] = []
    if not paths.copy.exists():
        try:
            rootfs.mount_rootfs(layers, paths.upper, paths.work, paths.target, flags)
            return notes
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENODEV, errno.EPERM, errno.ENOTSUP):
                raise
            notes.append(f"dockyard: overlayfs unavailable ({exc.strerror}); using a private copy of the image\n")
        from runtime.layers import flatten

        staging = paths.copy.with_name(paths.copy.name + ".tmp")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        flatten([Path(p) for p in layers], staging)
        staging.rename(paths.copy)
    syscalls.mount(paths.copy, paths.target, None, syscalls.MS_BIND | syscalls.MS_REC)
    if flags:
        syscalls.mount(None, paths.target, None, syscalls.MS_BIND | syscalls.MS_REMOUNT | flags)
    return notes


def _fork(
    process: ProcessSpec,
    stdio: tuple[int, int, int] | None,
    join_cgroup: Callable[[int], None],
    setup: Callable[[], list[str]],
    confine: Confinement,
) -> Launched:
    go_r, go_w = os.pipe()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    tty_parent, tty_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) if stdio is None else (None, None)
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(err_r)
        if tty_parent is not None:
            tty_parent.close()
        _child(process, stdio, tty_child, go_r, err_w, setup, confine)
    os.close(go_r)
    os.close(err_w)
    if tty_child is not None:
        tty_child.close()
    try:
        join_cgroup(pid)
        os.write(go_w, b"1")
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        # The child sets up its root while it is moved into the cgroup: if that failed first,
        # its report (not the join's error about a process gone) says why.
        report = _read_all(err_r)
        os.close(err_r)
        os.waitpid(pid, 0)
        if not report:
            raise
        _raise_report(report, 125)
    finally:
        os.close(go_w)
    report = _read_all(err_r)
    os.close(err_r)
    if report:
        _, status = os.waitpid(pid, 0)
        _raise_report(report, exit_code(status))
    master = None
    if tty_parent is not None:
        _, fds, _, _ = socket.recv_fds(tty_parent, 1, 1)
        tty_parent.close()
        master = fds[0]
    return Launched(pid, master)


def _raise_report(report: bytes, status_code: int) -> NoReturn:
    code, _, message = report.decode(errors="replace").partition(" ")
    raise ChildError(message, int(code) if code.isdigit() else status_code)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _child(
    process: ProcessSpec,
    stdio: tuple[int, int, int] | None,
    tty: socket.socket | None,
    go: int,
    err: int,
    setup: Callable[[], list[str]],
    confine: Confinement,
) -> None:
    code = 125
    try:
        os.setsid()
        # Ignored signals stay ignored across execve(2), and a shell cannot trap a signal ignored
        # on entry (POSIX "trap"); Python ignores SIGPIPE and the supervisor SIGHUP. Reset them all.
        for sig in signal.valid_signals():
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(sig, signal.SIG_DFL)
        for reserved in range(32, signal.SIGRTMIN):
            with contextlib.suppress(OSError):
                syscalls.reset_signal(reserved)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        # The root is set up while the supervisor moves this process into the container's
        # cgroup (a write that waits for an RCU grace period, ~10 ms); nothing of the container
        # runs before the move is done.
        notes = setup()
        if os.read(go, 1) != b"1":
            os._exit(125)
        os.close(go)
        _stdio(stdio, tty)
        for note in notes:
            os.write(2, note.encode())
        rlimits.apply(process.rlimits)
        _drop_privileges(process, confine)
        os.chdir(process.cwd)
        env = dict(e.partition("=")[::2] for e in process.env)
        if confine.filter is not None and confine.no_new_privileges:
            # No privilege needed: as late as possible, so that nothing the runtime still does
            # has to be allowed by the profile (execve itself must be).
            syscalls.seccomp_set_filter(confine.filter.program, confine.filter.flags)
        code = 127
        _exec(process, env, err)
    except BaseException as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, OSError) and exc.filename:
            message = f"{message}: {exc.filename}"
        elif not isinstance(exc, OSError):
            message = "".join(traceback.format_exception_only(exc)).strip()
        with contextlib.suppress(OSError):
            os.write(err, f"{code} {message}".encode())
    os._exit(code)


def _stdio(stdio: tuple[int, int, int] | None, tty: socket.socket | None) -> None:
    if stdio is not None:
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        return
    assert tty is not None
    # The pty comes from the container's own devpts instance, so `tty` inside names a real
    # /dev/pts entry; the master goes to the supervisor (runc's console socket).
    master, slave = os.openpty()
    socket.send_fds(tty, [b"t"], [master])
    os.close(master)
    tty.close()
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 1)


def _drop_privileges(process: ProcessSpec, confine: Confinement) -> None:
    last = (
        int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        if os.path.exists("/proc/sys/kernel/cap_last_cap")
        else 40
    )
    for cap in range(last + 1):
        if cap not in confine.caps:
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)
    syscalls.clear_ambient_caps()
    syscalls.clear_inheritable_caps()
    if confine.no_new_privileges:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    elif confine.filter is not None:
        # Without no_new_privs, installing a filter takes CAP_SYS_ADMIN, which setuid(2) below may
        # take away; so the filter goes in now, and the profile must allow the calls that follow
        # (setgroups, setgid, setuid, prctl, chdir, execve), as runc's init requires too.
        syscalls.seccomp_set_filter(confine.filter.program, confine.filter.flags)
    os.setgroups(list(process.groups))
    os.setgid(process.gid)
    os.setuid(process.uid)
    # Changing credentials clears the parent-death signal (prctl(2), PR_SET_PDEATHSIG).
    syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)


def _exec(process: ProcessSpec, env: dict[str, str], err: int) -> None:
    try:
        os.execvpe(process.args[0], list(process.args), env)
    except FileNotFoundError:
        raise OSError(errno.ENOENT, f'exec: "{process.args[0]}": executable file not found in $PATH') from None
    except PermissionError:
        os.write(err, f'126 exec: "{process.args[0]}": permission denied'.encode())
        os._exit(126)


def winsize(fd: int) -> bytes:
    return fcntl.ioctl(fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))


def set_winsize(fd: int, size: bytes) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, size)
