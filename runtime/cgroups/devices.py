"""Device rules: Docker's allow-list, written to the v1 devices controller or compiled into an
eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE for cgroup v2, which has no devices files
(Documentation/admin-guide/cgroup-v2.rst, "Device controller"; runc libcontainer/cgroups/devices).

The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`, where
access_type is (access << 16) | type, and returns 1 to allow, 0 to refuse with EPERM."""

from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from runtime import syscalls

__all__ = [
    "DEFAULT_RULES",
    "DISABLE_ENV",
    "DeviceRule",
    "attach_program",
    "parse_rule",
    "program",
    "try_attach",
    "v1_controller_enabled",
]

# Docker's defaults (moby's DefaultLinuxSpec): mknod of anything (useless without read/write),
# the nodes a container's /dev holds, and ptys.
DEFAULT_RULES = (
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",  # null
    "c 1:5 rwm",  # zero
    "c 1:7 rwm",  # full
    "c 1:8 rwm",  # random
    "c 1:9 rwm",  # urandom
    "c 5:0 rwm",  # tty
    "c 5:1 rwm",  # console
    "c 5:2 rwm",  # ptmx
    "c 136:* rwm",  # pts
    "c 10:200 rwm",  # tun
)

# For the tests: "1" makes the runtime act as if the kernel offered neither the v1 devices
# controller nor device programs (the fallback: no CAP_MKNOD, a nodev root); "v1" as if only the
# v1 controller were missing (the device program alone then guards the devices).
DISABLE_ENV = "DOCKYARD_NO_DEVICE_CGROUP"

_TYPES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_PROG_TYPE_CGROUP_DEVICE = 15
_ATTACH_CGROUP_DEVICE = 6
_F_ALLOW_MULTI = 2

# eBPF opcodes (linux/bpf.h, bpf_common.h).
_LDX_W = 0x61  # dst = *(u32 *)(src + off)
_AND32_K = 0x54
_RSH32_K = 0x74
_MOV64_K = 0xB7
_MOV64_X = 0xBF
_JNE_K = 0x55
_JNE_X = 0x5D
_EXIT = 0x95


@dataclass(frozen=True)
class DeviceRule:
    kind: str  # "a", "b" or "c"
    major: int | None  # None: any
    minor: int | None
    access: str  # a subset of "rwm"


def parse_rule(text: str) -> DeviceRule:
    """The devices.allow syntax: "c 1:3 rwm", "b *:* m", "a"."""
    parts = text.split()
    if parts == ["a"]:
        return DeviceRule("a", None, None, "rwm")
    kind, numbers, access = parts
    major, _, minor = numbers.partition(":")
    return DeviceRule(kind, None if major == "*" else int(major), None if minor == "*" else int(minor), access)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(rules: tuple[str, ...] = DEFAULT_RULES) -> bytes:
    """An allow-list: the first rule that matches allows; no match refuses."""
    code = [
        _insn(_LDX_W, dst=2, src=1, off=0),
        _insn(_AND32_K, dst=2, imm=0xFFFF),  # r2 = type
        _insn(_LDX_W, dst=3, src=1, off=0),
        _insn(_RSH32_K, dst=3, imm=16),  # r3 = requested access
        _insn(_LDX_W, dst=4, src=1, off=4),  # r4 = major
        _insn(_LDX_W, dst=5, src=1, off=8),  # r5 = minor
    ]
    for text in rules:
        rule = parse_rule(text)
        # Each check is (instructions before the jump, the jump's opcode, dst, src, imm).
        checks: list[tuple[list[bytes], int, int, int, int]] = []
        if rule.kind != "a":
            checks.append(([], _JNE_K, 2, 0, _TYPES[rule.kind]))
        mask = sum(_ACCESS[c] for c in set(rule.access))
        if mask != 7:
            # Allowed when the request asks for nothing beyond the rule: (req & mask) == req.
            checks.append(([_insn(_MOV64_X, dst=1, src=3), _insn(_AND32_K, dst=1, imm=mask)], _JNE_X, 1, 3, 0))
        if rule.major is not None:
            checks.append(([], _JNE_K, 4, 0, rule.major))
        if rule.minor is not None:
            checks.append(([], _JNE_K, 5, 0, rule.minor))
        block_len = sum(len(pre) + 1 for pre, *_ in checks) + 2
        emitted = 0
        for pre, op, dst, src, imm in checks:
            code += pre
            emitted += len(pre) + 1
            # A failed check skips the rest of this rule, its "allow" included.
            code.append(_insn(op, dst=dst, src=src, off=block_len - emitted, imm=imm))
        code += [_insn(_MOV64_K, dst=0, imm=1), _insn(_EXIT)]
    code += [_insn(_MOV64_K, dst=0, imm=0), _insn(_EXIT)]
    return b"".join(code)


def attach_program(cgroup_dir: Path, rules: tuple[str, ...] = DEFAULT_RULES) -> None:
    """Load the program for `rules` and attach it to the v2 cgroup `cgroup_dir`. The attachment
    holds the program; it goes away with the cgroup. BPF_F_ALLOW_MULTI lets programs attached
    higher up still run, so a limit placed on the runtime binds its containers too."""
    prog = syscalls.bpf_prog_load(_PROG_TYPE_CGROUP_DEVICE, program(rules), "Apache-2.0", "dockyard_dev")
    try:
        target = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            syscalls.bpf_prog_attach(target, prog, _ATTACH_CGROUP_DEVICE, _F_ALLOW_MULTI)
        finally:
            os.close(target)
    finally:
        os.close(prog)


def _disabled() -> bool:
    return os.environ.get(DISABLE_ENV) == "1"


def v1_controller_enabled() -> bool:
    return os.environ.get(DISABLE_ENV) not in ("1", "v1")


def try_attach(cgroup_dir: Path, rules: tuple[str, ...] = DEFAULT_RULES) -> bool:
    """attach_program, reporting failure (no CAP_BPF, a kernel without cgroup BPF) on stderr."""
    if _disabled():
        return False
    try:
        attach_program(cgroup_dir, rules)
    except OSError as exc:
        print(f"dockyard: cannot attach the device program to {cgroup_dir}: {exc.strerror}", file=sys.stderr)
        return False
    return True
