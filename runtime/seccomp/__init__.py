"""Seccomp: the container's system call filter, built without libseccomp.

`filter_for(setting, caps)` turns the container's seccomp setting ("default", "unconfined" or the
text of a Docker JSON profile) into the packed BPF program to install, or None for no filter.
Compiling the default profile (and loading the compiler) takes ~20 ms, so with a `cache`
directory the program is kept there with the key it was compiled for: the setting, the
capabilities, the machine, the kernel release and the compiler's source files (size and mtime).
An entry is used only when its key is exactly the one asked for."""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.seccomp.errors import ProfileError

if TYPE_CHECKING:
    from runtime.seccomp.profile import Profile

__all__ = ["DEFAULT", "UNCONFINED", "Filter", "ProfileError", "filter_for", "profile_for"]

DEFAULT = "default"
UNCONFINED = "unconfined"
_SOURCES = ("__init__.py", "bpf.py", "default.py", "errors.py", "profile.py", "syscall_numbers.py")
_BPF_INSN = 8  # sizeof(struct sock_filter)
_BPF_MAXINSNS = 4096


@dataclass(frozen=True)
class Filter:
    program: bytes  # struct sock_filter[]
    flags: int = 0  # SECCOMP_FILTER_FLAG_*


def profile_for(setting: str) -> Profile | None:
    if setting == DEFAULT:
        from runtime.seccomp.default import DEFAULT_PROFILE

        return DEFAULT_PROFILE
    if setting == UNCONFINED:
        return None
    from runtime.seccomp.profile import parse_docker_json

    return parse_docker_json(setting)


def filter_for(setting: str, caps: Iterable[str], cache: Path | None = None) -> Filter | None:
    """Raises ProfileError for a profile that cannot be compiled. With `cache`, a directory, a
    program compiled before for the same inputs is read from it, and a new one written to it."""
    if setting == UNCONFINED:
        return None
    caps = sorted(caps)
    key = _cache_key(setting, caps) if cache is not None else b""
    entry = cache / f"{zlib.crc32(key):08x}-{len(key)}.bpf" if cache is not None else None
    if entry is not None and (cached := _read_cached(entry, key)) is not None:
        return cached
    compiled = _compile(setting, caps)
    if entry is not None and compiled is not None:
        _write_cached(entry, key, compiled)
    return compiled


def _compile(setting: str, caps: Iterable[str]) -> Filter | None:
    from runtime.seccomp.bpf import compile_profile
    from runtime.seccomp.profile import FLAGS, resolve

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


def _cache_key(setting: str, caps: list[str]) -> bytes:
    uname = os.uname()
    here = Path(__file__).parent
    sources = []
    for name in _SOURCES:
        info = (here / name).stat()
        sources.append(f"{name}:{info.st_size}:{info.st_mtime_ns}")
    return "\0".join([_FORMAT, ",".join(caps), uname.machine, uname.release, *sources, setting]).encode()


_FORMAT = "dockyard-seccomp-1"
_HEADER = struct.Struct("<II")  # length of the key, filter flags


def _read_cached(entry: Path, key: bytes) -> Filter | None:
    """The cached filter for exactly `key`; None when missing, another key's or malformed."""
    try:
        data = entry.read_bytes()
    except OSError:
        return None
    if len(data) < _HEADER.size:
        return None
    key_length, flags = _HEADER.unpack_from(data)
    start = _HEADER.size + key_length
    program = data[start:]
    if data[_HEADER.size : start] != key or not program or len(program) % _BPF_INSN:
        return None
    if len(program) > _BPF_INSN * _BPF_MAXINSNS:
        return None
    return Filter(program, flags)


def _write_cached(entry: Path, key: bytes, compiled: Filter) -> None:
    from runtime.atomicfile import write_atomic

    # The cache only saves time: a cache that cannot be written (read-only root, disk full) is skipped.
    with contextlib.suppress(OSError):
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(entry, _HEADER.pack(len(key), compiled.flags) + key + compiled.program)
