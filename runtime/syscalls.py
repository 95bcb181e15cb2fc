"""The runtime's only ctypes module: thin wrappers over the Linux system calls Python 3.11 lacks.

Every wrapper raises `OSError` with the C errno, the way `os` functions do (the errno-checking
pattern of benchexec's `libc.py`)."""

from __future__ import annotations

import ctypes
import errno
import os
import struct

__all__ = [
    "MNT_DETACH",
    "MS_BIND",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_PRIVATE",
    "MS_RDONLY",
    "MS_REC",
    "MS_REMOUNT",
    "MS_SLAVE",
    "PR_CAPBSET_DROP",
    "PR_CAPBSET_READ",
    "PR_SET_NO_NEW_PRIVS",
    "PR_SET_PDEATHSIG",
    "bpf_prog_attach",
    "bpf_prog_load",
    "clear_ambient_caps",
    "clear_inheritable_caps",
    "mount",
    "pivot_root",
    "prctl",
    "seccomp_set_filter",
    "setns",
    "umount2",
    "unshare",
]

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_SYS_CAPGET = {"x86_64": 125, "aarch64": 90}
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
_SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# The interpreter is linked against libc, so its own symbol table has every function needed here;
# ctypes.util.find_library("c") would run `ldconfig -p` in a subprocess on every start.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _bytes(value: str | os.PathLike[str] | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(
    source: str | os.PathLike[str] | None,
    target: str | os.PathLike[str],
    fstype: str | None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    """mount(2)."""
    _check(
        _libc.mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)),
        f"mount {fstype or ''} {source} on {os.fspath(target)}",
    )


def umount2(target: str | os.PathLike[str], flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_bytes(target), flags), f"umount {os.fspath(target)}")


def pivot_root(new_root: str | os.PathLike[str], put_old: str | os.PathLike[str]) -> None:
    """pivot_root(2); glibc has no wrapper, so this goes through syscall(2)."""
    number = _SYS_PIVOT_ROOT[os.uname().machine]
    _check(_libc.syscall(number, _bytes(new_root), _bytes(put_old)), "pivot_root")


def unshare(flags: int) -> None:
    """unshare(2)."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2). Joining a PID namespace only affects children forked afterwards (pid_namespaces(7))."""
    _check(_libc.setns(fd, nstype), "setns")


class _KernelSigaction(ctypes.Structure):
    # struct kernel_sigaction (the kernel's layout, not glibc's): handler, flags, restorer, mask.
    _fields_ = [
        ("handler", ctypes.c_ulong),
        ("flags", ctypes.c_ulong),
        ("restorer", ctypes.c_ulong),
        ("mask", ctypes.c_ulong),
    ]


def reset_signal(sig: int) -> None:
    """Set `sig` to SIG_DFL with rt_sigaction(2) itself: glibc (and so Python) refuses the two
    real-time signals it reserves, 32 and 33, which GNU make, for one, leaves ignored in its
    children, and an ignored disposition survives execve(2)."""
    action = _KernelSigaction(0, 0, 0, 0)
    number = _SYS_RT_SIGACTION[os.uname().machine]
    _check(_libc.syscall(number, sig, ctypes.byref(action), None, ctypes.sizeof(ctypes.c_ulong)), "rt_sigaction")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2)."""
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl {option}")


def clear_ambient_caps() -> None:
    # Kernels before 4.3 have no ambient set; EINVAL there means there is nothing to clear.
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as exc:
        if exc.errno != 22:
            raise


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def clear_inheritable_caps() -> None:
    """Empty the inheritable set: for root, execve(2) adds inheritable capabilities to the new
    permitted set regardless of the bounding set (capabilities(7), "Transformation of capabilities")."""
    machine = os.uname().machine
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.syscall(_SYS_CAPGET[machine], ctypes.byref(header), data), "capget")
    if data[0].inheritable == 0 and data[1].inheritable == 0:
        return
    data[0].inheritable = 0
    data[1].inheritable = 0
    _check(_libc.syscall(_SYS_CAPSET[machine], ctypes.byref(header), data), "capset")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
_SECCOMP_SET_MODE_FILTER = 1


def seccomp_set_filter(program: bytes, flags: int = 0) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER) with a packed array of struct sock_filter. Without
    no_new_privs this needs CAP_SYS_ADMIN (seccomp(2))."""
    buffer = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    number = _SYS_SECCOMP[os.uname().machine]
    _check(_libc.syscall(number, _SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog)), "seccomp")


_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8


def _bpf(command: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    number = _SYS_BPF[os.uname().machine]
    return int(_libc.syscall(number, command, attr, len(attr)))


def bpf_prog_load(prog_type: int, instructions: bytes, license: str, name: str = "") -> int:
    """bpf(BPF_PROG_LOAD): the new program's fd. A program the verifier rejects raises OSError
    whose message carries the verifier's log."""
    insns = ctypes.create_string_buffer(instructions, len(instructions))
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(65536)
    for log_level in (0, 1):
        # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level,
        # log_size, log_buf, kern_version, prog_flags, prog_name[16] (linux/bpf.h).
        attr = ctypes.create_string_buffer(
            struct.pack(
                "=IIQQIIQII16s",
                prog_type,
                len(instructions) // 8,
                ctypes.addressof(insns),
                ctypes.addressof(lic),
                log_level,
                len(log) if log_level else 0,
                ctypes.addressof(log) if log_level else 0,
                0,
                0,
                name.encode()[:15],
            ),
            64,
        )
        fd = _bpf(_BPF_PROG_LOAD, attr)
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if log_level or err not in (errno.EACCES, errno.EINVAL):
            detail = log.value.decode(errors="replace").strip()
            raise OSError(err, f"bpf prog load: {os.strerror(err)}" + (f": {detail}" if detail else ""))
    raise AssertionError("unreachable")


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    """bpf(BPF_PROG_ATTACH): attach `prog_fd` to the cgroup open as `target_fd`."""
    attr = ctypes.create_string_buffer(struct.pack("=IIIII", target_fd, prog_fd, attach_type, flags, 0), 20)
    _check(_bpf(_BPF_PROG_ATTACH, attr), "bpf prog attach")
