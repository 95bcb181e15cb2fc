"""Seccomp: the container's system call filter, built without libseccomp.

`filter_for(setting, caps)` turns the container's seccomp setting ("default", "unconfined" or the
text of a Docker JSON profile) into the packed BPF program to install, or None for no filter."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runtime.seccomp.bpf import compile_profile
from runtime.seccomp.default import DEFAULT_PROFILE
from runtime.seccomp.profile import FLAGS, Profile, ProfileError, parse_docker_json, resolve

__all__ = ["DEFAULT", "UNCONFINED", "Filter", "ProfileError", "filter_for", "profile_for"]

DEFAULT = "default"
UNCONFINED = "unconfined"


@dataclass(frozen=True)
class Filter:
    program: bytes  # struct sock_filter[]
    flags: int = 0  # SECCOMP_FILTER_FLAG_*


def profile_for(setting: str) -> Profile | None:
    if setting == DEFAULT:
        return DEFAULT_PROFILE
    if setting == UNCONFINED:
        return None
    return parse_docker_json(setting)


def filter_for(setting: str, caps: Iterable[str]) -> Filter | None:
    """Raises ProfileError for a profile that cannot be compiled."""
    profile = profile_for(setting)
    if profile is None:
        return None
    resolved = resolve(profile, caps)
    try:
        program = compile_profile(resolved)
    except ValueError as exc:
        raise ProfileError(str(exc)) from None
    flags = 0
    for name in resolved.flags:
        flags |= FLAGS[name]
    return Filter(program.pack(), flags)
