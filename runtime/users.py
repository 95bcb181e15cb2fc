"""USER resolution the way Docker does it: names and numbers looked up in the container's own
/etc/passwd and /etc/group, never the host's (runc libcontainer/user)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UserError", "UserInfo", "read_from_layers", "read_from_root", "resolve_user"]

ReadFile = Callable[[str], str | None]


class UserError(Exception):
    pass


@dataclass(frozen=True)
class UserInfo:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def read_from_root(root: Path) -> ReadFile:
    def read(path: str) -> str | None:
        try:
            return (root / path.lstrip("/")).read_text(errors="replace")
        except OSError:
            return None

    return read


def read_from_layers(layers: list[Path]) -> ReadFile:
    """Read a file as the overlay of `layers` (bottom to top) would show it: the topmost copy,
    unless a whiteout (a 0/0 character device) hides it."""

    def read(path: str) -> str | None:
        rel = path.lstrip("/")
        for layer in reversed(layers):
            candidate = layer / rel
            try:
                st = os.lstat(candidate)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None
            try:
                return candidate.read_text(errors="replace")
            except OSError:
                return None
        return None

    return read


def _entries(text: str | None) -> list[list[str]]:
    if not text:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(user: str, read: ReadFile) -> UserInfo:
    name, _, group = (user or "0").partition(":")
    passwd = [e for e in _entries(read("/etc/passwd")) if len(e) >= 7]
    groups = [e for e in _entries(read("/etc/group")) if len(e) >= 4]

    match = next((e for e in passwd if e[0] == name or (name.isdigit() and e[2] == name)), None)
    if match is None and not name.isdigit():
        raise UserError(f"unable to find user {name}: no matching entries in passwd file")
    uid = int(name) if match is None else int(match[2])
    gid = 0 if match is None else int(match[3])
    home = "/" if match is None else (match[5] or "/")
    username = "" if match is None else match[0]

    if group:
        found = next((e for e in groups if e[0] == group or (group.isdigit() and e[2] == group)), None)
        if found is None and not group.isdigit():
            raise UserError(f"unable to find group {group}: no matching entries in group file")
        gid = int(group) if found is None else int(found[2])
        return UserInfo(uid, gid, (gid,), home)

    extra = [int(e[2]) for e in groups if username and username in e[3].split(",") and e[2].isdigit()]
    return UserInfo(uid, gid, tuple(dict.fromkeys([gid, *extra])), home)
