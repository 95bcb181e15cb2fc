"""Linux namespaces: each one's clone(2) flag and its name under /proc/<pid>/ns (namespaces(7))."""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable

from runtime import syscalls


class Namespace(enum.Enum):
    MOUNT = (0x00020000, "mnt")
    UTS = (0x04000000, "uts")
    IPC = (0x08000000, "ipc")
    NET = (0x40000000, "net")
    PID = (0x20000000, "pid")
    CGROUP = (0x02000000, "cgroup")

    def __init__(self, flag: int, proc_name: str) -> None:
        self.flag = flag
        self.proc_name = proc_name

    def path(self, pid: int | str = "self") -> str:
        """/proc/<pid>/ns/<name>; pid "thread-self" names the calling thread's, which is what
        unshare(2) and setns(2) change for the network namespace."""
        if pid == "thread-self":
            return f"/proc/thread-self/ns/{self.proc_name}"
        return f"/proc/{pid}/ns/{self.proc_name}"


def flags(namespaces: Iterable[Namespace]) -> int:
    result = 0
    for ns in namespaces:
        result |= ns.flag
    return result


def unshare(namespaces: Iterable[Namespace]) -> None:
    syscalls.unshare(flags(namespaces))


def enter(pid: int, namespace: Namespace) -> None:
    """setns(2) into `namespace` of process `pid`."""
    fd = os.open(namespace.path(pid), os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, namespace.flag)
    finally:
        os.close(fd)
