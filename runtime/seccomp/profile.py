"""A seccomp profile as data, read from Docker's JSON format, and narrowed to one container.

A `Profile` holds rules that may depend on the container's capabilities, the architecture and
the kernel version (Docker's `includes`/`excludes`). `resolve()` keeps the rules that apply to a
given container, as moby's setupSeccomp does before handing the profile to the OCI runtime."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.seccomp.errors import ProfileError

__all__ = [
    "ACTIONS",
    "OPERATORS",
    "Arg",
    "Condition",
    "Profile",
    "ProfileError",
    "Rule",
    "parse_docker_json",
    "resolve",
]

# SCMP_ACT_* names; the value is what the filter returns (SECCOMP_RET_*, seccomp(2)).
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,  # libseccomp's KILL is KILL_THREAD
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
OPERATORS = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
# SCMP_ARCH_* names of the architectures this runtime has system call tables for.
ARCH_NAMES = {
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_AARCH64": "aarch64",
}
# The names Docker's includes/excludes "arches" use for the machine (Go's GOARCH, mapped).
_MACHINE_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "x86", "armv7l": "arm"}
_MACHINE_SCMP = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}
_EPERM = 1


@dataclass(frozen=True)
class Arg:
    """Argument `index` compared with `value` (for MASKED_EQ: `arg & value == value_two`)."""

    index: int
    value: int
    op: str
    value_two: int = 0


@dataclass(frozen=True)
class Condition:
    """Docker's includes/excludes: capabilities, architectures, a minimum kernel."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: str = ""


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: str = "SCMP_ACT_ALLOW"
    errno: int | None = None
    args: tuple[Arg, ...] = ()
    includes: Condition = field(default_factory=Condition)
    excludes: Condition = field(default_factory=Condition)


@dataclass(frozen=True)
class Profile:
    default_action: str
    rules: tuple[Rule, ...]
    default_errno: int | None = None
    architectures: tuple[str, ...] = ()  # SCMP_ARCH_* names; empty means the machine's own
    arch_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # native -> sub-architectures
    flags: tuple[str, ...] = ()


def return_value(action: str, errno: int | None) -> int:
    """The filter's return value for `action`; ERRNO and TRACE carry a 16-bit datum (EPERM unless given)."""
    base = ACTIONS[action]
    if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return base | ((_EPERM if errno is None else errno) & 0xFFFF)
    return base


def _kernel_at_least(version: str, release: str) -> bool:
    def numbers(text: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", text)[:3])

    return numbers(release) >= numbers(version)


def resolve(profile: Profile, caps: Iterable[str], machine: str | None = None, release: str | None = None) -> Profile:
    """The rules of `profile` that apply to a container holding `caps`, on `machine` (`uname -m`)
    running kernel `release`, with the architecture list made concrete."""
    machine = machine or os.uname().machine
    release = release or os.uname().release
    arch = _MACHINE_ARCH.get(machine, machine)
    held = set(caps)
    kept: list[Rule] = []
    for rule in profile.rules:
        ex, inc = rule.excludes, rule.includes
        if arch in ex.arches or any(c in held for c in ex.caps):
            continue
        if ex.min_kernel and _kernel_at_least(ex.min_kernel, release):
            continue
        if inc.arches and arch not in inc.arches:
            continue
        if any(c not in held for c in inc.caps):
            continue
        if inc.min_kernel and not _kernel_at_least(inc.min_kernel, release):
            continue
        kept.append(Rule(rule.names, rule.action, rule.errno, rule.args))
    architectures = list(profile.architectures)
    native = _MACHINE_SCMP.get(machine)
    if native is not None and native in profile.arch_map:
        architectures = [native, *profile.arch_map[native]]
    if not architectures and native:
        architectures = [native]
    return Profile(profile.default_action, tuple(kept), profile.default_errno, tuple(architectures), {}, profile.flags)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileError(f"{what} must be a non-negative integer, not {value!r}")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"{what} must be a list of strings")
    return tuple(value)


def _action(value: Any, where: str) -> str:
    if value == "SCMP_ACT_NOTIFY":
        raise ProfileError(f"{where}: SCMP_ACT_NOTIFY needs a seccomp agent, which this runtime does not have")
    if value not in ACTIONS:
        raise ProfileError(f"{where}: unknown action {value!r}")
    return str(value)


def _condition(value: Any, where: str) -> Condition:
    if value is None:
        return Condition()
    if not isinstance(value, dict):
        raise ProfileError(f"{where} must be an object")
    min_kernel = value.get("minKernel") or ""
    if not isinstance(min_kernel, str) or (min_kernel and not re.fullmatch(r"\d+(\.\d+){0,2}", min_kernel)):
        raise ProfileError(f"{where}.minKernel: invalid kernel version {min_kernel!r}")
    caps = _strings(value.get("caps"), f"{where}.caps")
    return Condition(caps, _strings(value.get("arches"), f"{where}.arches"), min_kernel)


def _arg(value: Any, where: str) -> Arg:
    if not isinstance(value, dict):
        raise ProfileError(f"{where} must be an object")
    index = _int(value.get("index", 0), f"{where}.index")
    if index > 5:
        raise ProfileError(f"{where}.index: a system call has at most 6 arguments")
    op = value.get("op")
    if op not in OPERATORS:
        raise ProfileError(f"{where}.op: unknown operator {op!r}")
    arg_value = _int(value.get("value", 0), f"{where}.value")
    two = _int(value.get("valueTwo", 0), f"{where}.valueTwo")
    if arg_value >= 1 << 64 or two >= 1 << 64:
        raise ProfileError(f"{where}: values are 64-bit")
    return Arg(index, arg_value, str(op), two)


def parse_docker_json(text: str) -> Profile | None:
    """Docker's seccomp profile format (moby profiles/seccomp). None means "no filter", as Docker
    treats a profile with neither a default action nor rules."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"Decoding seccomp profile failed: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError("Decoding seccomp profile failed: not a JSON object")
    syscalls = data.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise ProfileError("syscalls must be a list")
    if not data.get("defaultAction") and not syscalls:
        return None
    if data.get("listenerPath"):
        raise ProfileError("listenerPath: seccomp notification agents are not supported")
    if data.get("architectures") and data.get("archMap"):
        raise ProfileError(
            "'architectures' and 'archMap' were specified in the seccomp profile, "
            "use either 'architectures' or 'archMap'"
        )
    arch_map: dict[str, tuple[str, ...]] = {}
    for i, entry in enumerate(data.get("archMap") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("architecture"), str):
            raise ProfileError(f"archMap[{i}] must name an architecture")
        arch_map[entry["architecture"]] = _strings(entry.get("subArchitectures"), f"archMap[{i}].subArchitectures")
    rules = []
    for i, call in enumerate(syscalls):
        where = f"syscalls[{i}]"
        if not isinstance(call, dict):
            raise ProfileError(f"{where} must be an object")
        if call.get("name") and call.get("names"):
            raise ProfileError("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")
        names = (call["name"],) if call.get("name") else _strings(call.get("names"), f"{where}.names")
        errno = call.get("errnoRet")
        rules.append(
            Rule(
                names=tuple(names),
                action=_action(call.get("action"), where),
                errno=None if errno is None else _int(errno, f"{where}.errnoRet"),
                args=tuple(_arg(a, f"{where}.args[{j}]") for j, a in enumerate(call.get("args") or [])),
                includes=_condition(call.get("includes"), f"{where}.includes"),
                excludes=_condition(call.get("excludes"), f"{where}.excludes"),
            )
        )
    default_errno = data.get("defaultErrnoRet")
    flags = _strings(data.get("flags"), "flags")
    unknown_flags = set(flags) - set(FLAGS)
    if unknown_flags:
        raise ProfileError(f"seccomp flags not supported: {', '.join(sorted(unknown_flags))}")
    return Profile(
        default_action=_action(data.get("defaultAction"), "defaultAction"),
        rules=tuple(rules),
        default_errno=None if default_errno is None else _int(default_errno, "defaultErrnoRet"),
        architectures=_strings(data.get("architectures"), "architectures"),
        arch_map=arch_map,
        flags=flags,
    )


# The seccomp(2) filter flags a profile may ask for. TSYNC is accepted and has nothing to do: the
# filter is installed by a single-threaded process just before it execs.
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 0,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
}
