"""Compile a resolved seccomp profile into a classic BPF program (seccomp(2), "Filters").

The program checks `seccomp_data.arch` and jumps to one section per architecture; each section
compares the system call number with every call the profile names (a `jeq` chain: the kernel's
per-architecture action cache makes calls whose verdict does not depend on arguments free after
the first), checks arguments where rules have them, and otherwise returns the default action.
As runc does, calls numbered above the highest one the profile names get ENOSYS rather than the
default errno, so that a C library newer than the profile falls back to an older call instead
of failing (runc libcontainer/seccomp/patchbpf)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.seccomp.profile import ACTIONS, ARCH_NAMES, Arg, Profile, Rule, return_value
from runtime.seccomp.syscall_numbers import table

__all__ = ["AUDIT_ARCH", "Program", "compile_profile"]

# AUDIT_ARCH_* (linux/audit.h): EM_* | 64BIT | LE.
AUDIT_ARCH = {"x86_64": 0xC000003E, "x86": 0x40000003, "x32": 0xC000003E, "aarch64": 0xC00000B7}
_X32_BIT = 0x40000000
_MAX_JUMP = 255
_MAX_INSNS = 4096  # BPF_MAXINSNS

# Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
_LD_W_ABS = 0x20
_ALU_AND_K = 0x54
_JA = 0x05
_JEQ_K = 0x15
_JGT_K = 0x25
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

# struct seccomp_data: nr, arch, instruction_pointer, args[6] (little-endian 64-bit words).
_OFF_NR = 0
_OFF_ARCH = 4
_ENOSYS = 38
_KILL_PROCESS = ACTIONS["SCMP_ACT_KILL_PROCESS"]


@dataclass(frozen=True)
class Insn:
    code: int
    jt: int | str = 0  # an int is a relative offset; a str names a target resolved later
    jf: int | str = 0
    k: int = 0


@dataclass(frozen=True)
class Program:
    instructions: tuple[tuple[int, int, int, int], ...]

    def pack(self) -> bytes:
        """The program as an array of struct sock_filter."""
        return b"".join(struct.pack("=HBBI", *insn) for insn in self.instructions)

    def __len__(self) -> int:
        return len(self.instructions)


def _ld(offset: int) -> Insn:
    return Insn(_LD_W_ABS, k=offset)


def _ret(value: int) -> Insn:
    return Insn(_RET_K, k=value)


def _arg_words(index: int) -> tuple[int, int]:
    low = 16 + 8 * index
    return low + 4, low  # (high word, low word) on little-endian machines


def _condition(arg: Arg) -> list[Insn]:
    """Instructions that fall through when `arg` holds and jump to "fail" otherwise. A 64-bit
    comparison is made of its two 32-bit halves, high word first. Targets: "pass" is the end of
    this condition, "fail" the end of the rule."""
    hi_off, lo_off = _arg_words(arg.index)
    value, hi, lo = arg.value, arg.value >> 32, arg.value & 0xFFFFFFFF
    op = arg.op
    if op == "SCMP_CMP_MASKED_EQ":
        mask_hi, mask_lo = value >> 32, value & 0xFFFFFFFF
        want_hi, want_lo = arg.value_two >> 32, arg.value_two & 0xFFFFFFFF
        return [
            _ld(hi_off),
            Insn(_ALU_AND_K, k=mask_hi),
            Insn(_JEQ_K, 0, "fail", want_hi),
            _ld(lo_off),
            Insn(_ALU_AND_K, k=mask_lo),
            Insn(_JEQ_K, 0, "fail", want_lo),
        ]
    if op == "SCMP_CMP_EQ":
        return [_ld(hi_off), Insn(_JEQ_K, 0, "fail", hi), _ld(lo_off), Insn(_JEQ_K, 0, "fail", lo)]
    if op == "SCMP_CMP_NE":
        return [_ld(hi_off), Insn(_JEQ_K, 0, "pass", hi), _ld(lo_off), Insn(_JEQ_K, "fail", "pass", lo)]
    # Ordered comparisons: the high words decide unless they are equal, then the low words do.
    if op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        low_jump = _JGT_K if op == "SCMP_CMP_GT" else _JGE_K
        return [
            _ld(hi_off),
            Insn(_JGT_K, "pass", 0, hi),
            Insn(_JEQ_K, 0, "fail", hi),
            _ld(lo_off),
            Insn(low_jump, "pass", "fail", lo),
        ]
    if op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):
        # arg < v is not (arg >= v); arg <= v is not (arg > v).
        low_jump = _JGE_K if op == "SCMP_CMP_LT" else _JGT_K
        return [
            _ld(hi_off),
            Insn(_JGT_K, "fail", 0, hi),
            Insn(_JEQ_K, 0, "pass", hi),
            _ld(lo_off),
            Insn(low_jump, "fail", "pass", lo),
        ]
    raise ValueError(f"unknown operator {op}")


def _rule_code(args: Sequence[Arg], verdict: int) -> list[Insn]:
    """All of `args` hold -> return `verdict`; otherwise fall through past the return."""
    conditions = [_condition(arg) for arg in args]
    total = sum(len(c) for c in conditions) + 1
    body: list[Insn] = []
    for cond in conditions:
        for pos, insn in enumerate(cond):
            here = len(body)

            def offset(target: int | str, pos: int = pos, here: int = here, size: int = len(cond)) -> int:
                if target == "pass":
                    return size - pos - 1
                if target == "fail":
                    return total - here - 1  # just past the rule's return
                assert isinstance(target, int)
                return target

            is_jump = insn.code & 0x07 == 0x05 and insn.code != _JA
            body.append(Insn(insn.code, offset(insn.jt), offset(insn.jf), insn.k) if is_jump else insn)
    body.append(_ret(verdict))
    if any(max(int(i.jt), int(i.jf)) > _MAX_JUMP for i in body):
        raise ValueError("seccomp rule too large for a BPF jump")
    return body


def _expand(rule: Rule) -> list[tuple[Arg, ...]]:
    """libseccomp cannot AND two conditions on the same argument; runc then adds one rule per
    condition (so they OR), and so do we."""
    indexes = [a.index for a in rule.args]
    if len(indexes) != len(set(indexes)):
        return [(a,) for a in rule.args]
    return [rule.args]


@dataclass
class _Call:
    conditional: list[tuple[tuple[Arg, ...], int]]
    unconditional: int | None = None


def _calls(profile: Profile, arch: str) -> dict[int, _Call]:
    numbers = table(arch)
    default = return_value(profile.default_action, profile.default_errno)
    calls: dict[int, _Call] = {}
    for rule in profile.rules:
        verdict = return_value(rule.action, rule.errno)
        if verdict == default:
            continue  # redundant with the default, as runc skips it
        for name in rule.names:
            nr = numbers.get(name)
            if nr is None:
                continue  # not a call of this architecture (libseccomp ignores it too)
            call = calls.setdefault(nr, _Call([]))
            if rule.args:
                call.conditional += [(args, verdict) for args in _expand(rule)]
            elif call.unconditional is None:
                call.unconditional = verdict
    return calls


def _section(profile: Profile, arch: str) -> list[Insn]:
    """Code for one architecture, entered with the accumulator holding nothing in particular."""
    default = return_value(profile.default_action, profile.default_errno)
    calls = _calls(profile, arch)
    named = [n for name in {n for r in profile.rules for n in r.names} if (n := table(arch).get(name)) is not None]
    code: list[Insn] = [_ld(_OFF_NR)]
    for nr in sorted(calls):
        call = calls[nr]
        # Rules with argument checks come first, so a specific rule is not shadowed by a blanket one.
        block: list[Insn] = []
        for args, verdict in call.conditional:
            block += _rule_code(args, verdict)
        block.append(_ret(default if call.unconditional is None else call.unconditional))
        if len(block) <= _MAX_JUMP:
            code.append(Insn(_JEQ_K, 0, len(block), nr))
        else:
            code += [Insn(_JEQ_K, 1, 0, nr), Insn(_JA, k=len(block))]
        code += block
    allow_like = profile.default_action in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")
    if named and not allow_like:
        highest = max(named)
        code += [Insn(_JGT_K, 0, 1, highest), _ret(0x00050000 | _ENOSYS)]
    code.append(_ret(default))
    return code


def compile_profile(profile: Profile) -> Program:
    """`profile` must be resolved (its architectures concrete, see profile.resolve)."""
    arches = [ARCH_NAMES[a] for a in profile.architectures if a in ARCH_NAMES]
    if not arches:
        raise ValueError("the seccomp profile names no architecture this runtime knows")
    # x32 shares AUDIT_ARCH_X86_64 and is told apart by a bit in the call number.
    native = [a for a in dict.fromkeys(arches) if a != "x32"]
    x32 = "x32" in arches
    if x32 and "x86_64" not in native:
        native.insert(0, "x86_64")
        only_x32 = True
    else:
        only_x32 = False
    sections: list[tuple[str, list[Insn]]] = []
    for arch in native:
        body: list[Insn] = []
        if arch == "x86_64":
            body += [_ld(_OFF_NR), Insn(_JSET_K, 0, 1, _X32_BIT)]
            body.append(Insn(_JA, k=-1) if x32 else _ret(_KILL_PROCESS))  # patched below
            body += [_ret(_KILL_PROCESS)] if only_x32 else _section(profile, "x86_64")
        else:
            body += _section(profile, arch)
        sections.append((arch, body))
    if x32:
        sections.append(("x32", _section(profile, "x32")))
    # Layout: the arch dispatch, then each section. Dispatch entries are `jeq arch; ja section`.
    dispatch_len = 2 * len(native) + 2
    starts: dict[str, int] = {}
    position = dispatch_len
    for arch, body in sections:
        starts[arch] = position
        position += len(body)
    program: list[Insn] = [_ld(_OFF_ARCH)]
    for i, arch in enumerate(native):
        here = 1 + 2 * i
        program += [Insn(_JEQ_K, 0, 1, AUDIT_ARCH[arch]), Insn(_JA, k=starts[arch] - (here + 1) - 1)]
    program.append(_ret(_KILL_PROCESS))  # an architecture the profile does not allow
    for arch, body in sections:
        if arch == "x86_64" and x32:
            ja_at = starts[arch] + 2
            body = [*body[:2], Insn(_JA, k=starts["x32"] - ja_at - 1), *body[3:]]
        program += body
    if len(program) > _MAX_INSNS:
        raise ValueError(f"seccomp filter has {len(program)} instructions, more than the kernel's {_MAX_INSNS}")
    return Program(tuple((i.code, int(i.jt), int(i.jf), i.k & 0xFFFFFFFF) for i in program))
