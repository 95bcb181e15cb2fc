"""A container's security settings: capabilities, privileged mode, no_new_privs and seccomp, with
Docker's rules for --cap-add, --cap-drop, --privileged and --security-opt."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CAPABILITIES",
    "DEFAULT_CAPS",
    "Security",
    "SecurityError",
    "all_capabilities",
    "normalize_capabilities",
    "parse_security_opts",
    "tweak_capabilities",
]

# Capability numbers (linux/capability.h).
CAPABILITIES = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
# Docker's default set (moby oci/caps/defaults.go).
DEFAULT_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
)
_ALL = "ALL"


class SecurityError(ValueError):
    pass


def last_cap() -> int:
    path = Path("/proc/sys/kernel/cap_last_cap")
    return int(path.read_text()) if path.exists() else max(CAPABILITIES.values())


def _own_bounding_set() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return (1 << (last_cap() + 1)) - 1


def all_capabilities() -> tuple[str, ...]:
    """Every capability this kernel knows and the runtime itself may pass on (a capability
    outside its own bounding set can never be regained), as --privileged grants."""
    top, own = last_cap(), _own_bounding_set()
    return tuple(name for name, number in CAPABILITIES.items() if number <= top and own & (1 << number))


def normalize_capabilities(names: Iterable[str]) -> list[str]:
    result = []
    for raw in names:
        name = raw.strip().upper()
        if name != _ALL and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name != _ALL and name not in CAPABILITIES:
            raise SecurityError(f'unknown capability: "{name}"')
        result.append(name)
    return result


def tweak_capabilities(adds: Iterable[str], drops: Iterable[str], privileged: bool) -> tuple[str, ...]:
    """Docker's rules (moby oci/caps TweakCapabilities): --privileged has every capability;
    --cap-add ALL starts from every capability minus the drops; --cap-drop ALL keeps only the adds;
    otherwise the defaults minus the drops plus the adds. Names may omit CAP_, in any case."""
    add, drop = normalize_capabilities(adds), normalize_capabilities(drops)
    if privileged:
        return all_capabilities()
    if _ALL in add:
        caps = [c for c in all_capabilities() if c not in drop]
    elif _ALL in drop:
        caps = [c for c in add if c != _ALL]
    else:
        caps = [c for c in DEFAULT_CAPS if c not in drop] + add
    return tuple(dict.fromkeys(caps))


@dataclass(frozen=True)
class Security:
    caps: tuple[str, ...] = DEFAULT_CAPS
    privileged: bool = False
    no_new_privileges: bool = False
    seccomp: str = "default"  # "default", "unconfined", or the text of a Docker JSON profile
    # --cap-add and --cap-drop as given (normalized), which `inspect` reports as Docker does
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Security:
        d = dict(data)
        d["caps"] = tuple(d.get("caps", DEFAULT_CAPS))
        for key in ("cap_add", "cap_drop"):
            d[key] = tuple(d.get(key, ()))
        return cls(**d)

    def cap_numbers(self) -> set[int]:
        return {CAPABILITIES[c] for c in self.caps}


def parse_security_opts(options: Iterable[str]) -> dict[str, Any]:
    """--security-opt values: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false].
    Options Docker has and this runtime cannot honour (apparmor, label, systempaths) are refused."""
    result: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep and ":" in option:  # the old key:value spelling
            key, _, value = option.partition(":")
            sep = ":"
        if key == "no-new-privileges":
            if sep and value.lower() not in ("true", "false"):
                raise SecurityError(f'invalid --security-opt 2: "{option}"')
            result["no_new_privileges"] = not sep or value.lower() == "true"
        elif key == "seccomp" and sep:
            if value == "unconfined":
                result["seccomp"] = "unconfined"
            elif value == "builtin":
                result["seccomp"] = "default"
            else:
                try:
                    result["seccomp"] = Path(value).read_text()
                except OSError as exc:
                    reason = os.strerror(exc.errno or 0)
                    raise SecurityError(f"opening seccomp profile ({value}) failed: {reason}") from None
        else:
            raise SecurityError(f'invalid --security-opt 1: "{option}"')
    return result
