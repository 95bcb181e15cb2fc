"""The seccomp compiler and the device program against the real kernel: a forked child installs
the filter (or joins a v2 cgroup with the program attached) and reports what its system calls
returned."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import stat
import struct
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime import syscalls
from runtime.cgroups import devices
from runtime.seccomp import filter_for
from runtime.seccomp.syscall_numbers import table
from runtime.security import DEFAULT_CAPS
from tests.conftest import require, require_root, require_tool

pytestmark = pytest.mark.privileged

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
MACHINE = os.uname().machine


def _nr(name: str) -> int:
    return table(MACHINE)[name]


def _in_child(setup: Callable[[], None], calls: Callable[[], list[int]]) -> list[int]:
    """Run `setup` then `calls` in a forked child; return the errno of each call (0: success)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            setup()
            os.write(w, json.dumps(calls()).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    assert data, "the child died"
    return list(json.loads(data))


def _errno_of(result: int) -> int:
    err = ctypes.get_errno() if result < 0 else 0
    ctypes.set_errno(0)
    return err


def _call(name: str, *args: int) -> int:
    return _errno_of(_libc.syscall(_nr(name), *(ctypes.c_ulong(a) for a in args)))


def _install(setting: str, caps: tuple[str, ...] = DEFAULT_CAPS) -> Callable[[], None]:
    f = filter_for(setting, caps)
    assert f is not None

    def setup() -> None:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
        syscalls.seccomp_set_filter(f.program, f.flags)

    return setup


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()
    require(MACHINE in ("x86_64", "aarch64"), "seccomp tables cover x86_64 and aarch64")


CLONE_NEWUSER = 0x10000000
SIGCHLD = 17


def test_default_profile_refuses_what_docker_refuses() -> None:
    def calls() -> list[int]:
        return [
            _call("unshare", CLONE_NEWUSER),
            _call("mount", 0, 0, 0, 0, 0),
            _call("keyctl", 0, 0),
            _call("bpf", 0, 0, 0),
            _call("kexec_load", 0, 0, 0, 0),
            _call("init_module", 0, 0, 0),
            _call("clone", CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0),
            _call("socket", 40, 1, 0),  # AF_VSOCK
            _call("personality", 4),  # not one of the allowed personas
            _call("clone3", 0, 0),
            _call("getpid"),
            _call("personality", 0xFFFFFFFF),  # the query is allowed
        ]

    assert _in_child(_install("default"), calls) == [errno.EPERM] * 9 + [errno.ENOSYS, 0, 0]


def test_capabilities_widen_the_default_profile() -> None:
    # With CAP_SYS_ADMIN the profile lets unshare through; the kernel then decides (a new user
    # namespace needs no privilege at all, so it succeeds).
    def calls() -> list[int]:
        return [_call("unshare", CLONE_NEWUSER)]

    assert _in_child(_install("default", (*DEFAULT_CAPS, "CAP_SYS_ADMIN")), calls) == [0]


def test_calls_newer_than_the_profile_get_enosys() -> None:
    # fchmodat2 (452) is newer than every call Docker's profile names: ENOSYS lets the C
    # library fall back to fchmodat, where EPERM would be a hard failure (runc does the same).
    missing = ctypes.create_string_buffer(b"/no/such/file")
    address = ctypes.addressof(missing)
    at_fdcwd = 2**32 - 100  # -100 as the kernel's int

    def calls() -> list[int]:
        return [_call("fchmodat2", at_fdcwd, address, 0, 0), _call("fchmodat", at_fdcwd, address, 0)]

    assert _in_child(_install("default"), calls) == [errno.ENOSYS, errno.ENOENT]


_OPS = {
    "SCMP_CMP_EQ": lambda a, v, _two: a == v,
    "SCMP_CMP_NE": lambda a, v, _two: a != v,
    "SCMP_CMP_LT": lambda a, v, _two: a < v,
    "SCMP_CMP_LE": lambda a, v, _two: a <= v,
    "SCMP_CMP_GT": lambda a, v, _two: a > v,
    "SCMP_CMP_GE": lambda a, v, _two: a >= v,
    "SCMP_CMP_MASKED_EQ": lambda a, v, two: a & v == two,
}
_VALUES = [0, 1, 0xFFFFFFFF, 1 << 32, (1 << 32) + 1, (5 << 32) + 7, (5 << 32) + 8, (6 << 32), 2**64 - 1]


@pytest.mark.parametrize("op", sorted(_OPS))
def test_argument_comparisons_are_64_bit(op: str) -> None:
    # fadvise64(-1, offset, len, advice) fails with EBADF unless the filter answers first.
    pivot, two = (5 << 32) + 7, (5 << 32)
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["fadvise64"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 99,
                "args": [{"index": 1, "value": pivot, "valueTwo": two, "op": op}],
            }
        ],
    }

    def calls() -> list[int]:
        return [_call("fadvise64", 2**64 - 1, v, 0, 0) for v in _VALUES]

    expected = [99 if _OPS[op](v, pivot, two) else errno.EBADF for v in _VALUES]
    assert _in_child(_install(json.dumps(profile)), calls) == expected


def test_conditions_on_different_arguments_and_on_the_same_one() -> None:
    # Two arguments: both must hold. The same argument twice: either may (runc's rule).
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["fadvise64"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 98,
                "args": [
                    {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
                    {"index": 2, "value": 20, "op": "SCMP_CMP_EQ"},
                ],
            },
            {
                "names": ["fadvise64"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 97,
                "args": [{"index": 3, "value": 3, "op": "SCMP_CMP_EQ"}, {"index": 3, "value": 4, "op": "SCMP_CMP_EQ"}],
            },
        ],
    }

    def calls() -> list[int]:
        fd = 2**64 - 1
        return [
            _call("fadvise64", fd, 10, 20, 0),
            _call("fadvise64", fd, 10, 21, 0),
            _call("fadvise64", fd, 0, 0, 3),
            _call("fadvise64", fd, 0, 0, 4),
            _call("fadvise64", fd, 0, 0, 5),
        ]

    assert _in_child(_install(json.dumps(profile)), calls) == [98, errno.EBADF, 97, 97, errno.EBADF]


def test_default_action_kill_process() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}],
    }
    f = filter_for(json.dumps(profile), DEFAULT_CAPS)
    assert f is not None
    pid = os.fork()
    if pid == 0:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
        syscalls.seccomp_set_filter(f.program, f.flags)
        os.getppid()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 31  # SIGSYS


# --- the device program on a real v2 cgroup -----------------------------------------------------------


def _unified_root() -> Path:
    for candidate in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        if (candidate / "cgroup.controllers").is_file():
            return candidate
    require(False, "no cgroup v2 hierarchy mounted")
    raise AssertionError


@pytest.fixture
def v2_cgroup() -> Iterator[Path]:
    d = _unified_root() / f"dockyard-test-{uuid.uuid4().hex[:12]}"
    d.mkdir()
    yield d
    for _ in range(100):
        try:
            d.rmdir()
            break
        except OSError:
            os.sched_yield()


def _opens(cgroup: Path | None, nodes: list[Path]) -> list[int]:
    def setup() -> None:
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    def calls() -> list[int]:
        results = []
        for node in nodes:
            try:
                os.close(os.open(node, os.O_RDONLY | os.O_NONBLOCK))
                results.append(0)
            except OSError as exc:
                results.append(exc.errno or -1)
        return results

    return _in_child(setup, calls)


def test_device_program_allows_the_list_and_refuses_the_rest(v2_cgroup: Path, tmp_path: Path) -> None:
    null, kmsg = tmp_path / "null", tmp_path / "kmsg"
    os.mknod(null, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(kmsg, 0o600 | stat.S_IFCHR, os.makedev(1, 11))  # /dev/kmsg: not on Docker's list
    assert _opens(v2_cgroup, [null, kmsg]) == [0, 0]  # nothing attached yet
    devices.attach_program(v2_cgroup)
    assert _opens(v2_cgroup, [null, kmsg]) == [0, errno.EPERM]
    assert _opens(None, [null, kmsg]) == [0, 0]  # outside the cgroup nothing changes
    bpftool = shutil.which("bpftool")
    if bpftool is not None:
        shown = subprocess.run([bpftool, "cgroup", "show", str(v2_cgroup)], capture_output=True, text=True)
        assert "cgroup_device" in shown.stdout, shown.stderr


def test_device_program_encodes_rules() -> None:
    # Each rule is a short block ending in "r0 = 1; exit"; the program ends in "r0 = 0; exit".
    code = devices.program(("c 1:3 rwm", "b *:* m"))
    insns = [struct.unpack("<BBhi", code[i : i + 8]) for i in range(0, len(code), 8)]
    assert insns[-2:] == [(0xB7, 0, 0, 0), (0x95, 0, 0, 0)]
    assert sum(1 for i in insns if i == (0xB7, 0, 0, 1)) == 2
    assert devices.parse_rule("c 136:* rwm") == devices.DeviceRule("c", 136, None, "rwm")


def test_bpftool_lists_the_program(v2_cgroup: Path) -> None:
    require_tool("bpftool")
    devices.attach_program(v2_cgroup)
    shown = subprocess.run(["bpftool", "cgroup", "show", str(v2_cgroup)], capture_output=True, text=True, check=True)
    assert "cgroup_device" in shown.stdout and "dockyard_dev" in shown.stdout


def test_v2_manager_attaches_the_program_to_its_cgroup(tmp_path: Path) -> None:
    # The v2 manager's device half, on the real v2 tree (this host's may have no controllers,
    # so limits are not set here; tests/contract covers those files).
    from runtime.cgroups.v2 import CgroupV2Manager

    root = _unified_root()
    manager = CgroupV2Manager(root, f"/dockyard-test-{uuid.uuid4().hex[:12]}")
    manager.create()
    try:
        assert manager.confine_devices(allow_all=False) is True
        assert manager.describe()["device_filter"] is True
        assert manager.directories() == {"": manager.dir}
        kmsg = tmp_path / "kmsg"
        os.mknod(kmsg, 0o600 | stat.S_IFCHR, os.makedev(1, 11))
        assert _opens(manager.dir, [kmsg]) == [errno.EPERM]
    finally:
        manager.kill_all()
        manager.destroy()
    assert not manager.dir.exists()


class _I386Call:
    """Makes a 32-bit (i386 ABI) system call from this 64-bit process, the way a 32-bit program
    in the container would: push rbx; mov eax, edi; mov ebx, esi; int 0x80; pop rbx; ret.
    Returns the raw result (-errno on failure)."""

    def __init__(self) -> None:
        import mmap

        self.code = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self.code.write(bytes([0x53, 0x89, 0xF8, 0x89, 0xF3, 0xCD, 0x80, 0x5B, 0xC3]))
        address = ctypes.addressof(ctypes.c_char.from_buffer(self.code))
        self.function = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int)(address)

    def __call__(self, nr: int, arg: int) -> int:
        return int(self.function(nr, arg))


def test_32_bit_calls_get_the_x86_section() -> None:
    require(MACHINE == "x86_64", "the i386 ABI exists on x86_64 only")
    call = _I386Call()
    x86 = table("x86")
    require(call(x86["getpid"], 0) == os.getpid(), "this kernel has no 32-bit emulation")

    def calls() -> list[int]:
        return [-call(x86["unshare"], CLONE_NEWUSER), int(call(x86["getppid"], 0) > 0)]

    assert _in_child(_install("default"), calls) == [errno.EPERM, 1]
    # A profile for x86_64 alone: a 32-bit call is an unknown architecture, and kills.
    only64 = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]})
    f = filter_for(only64, DEFAULT_CAPS)
    assert f is not None
    pid = os.fork()
    if pid == 0:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
        syscalls.seccomp_set_filter(f.program, f.flags)
        os.getpid()
        call(x86["getpid"], 0)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 31  # SIGSYS
