"""Sources of COPY and ADD: Go `filepath.Match` globs per path component, resolved below a source root
(the build context, or another stage's filesystem), with the .dockerignore rules applied; and the
checksum of what they select, which is what the build cache compares (names, types, modes, link targets
and contents; not owners or times, as Docker sends the context with every file owned by root)."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from collections.abc import Iterator
from pathlib import Path

from runtime.build.ignore import IgnoreRules

__all__ = ["SourceError", "checksum", "expand_source", "walk"]

_MAGIC = set("*?[")
_CHUNK = 1 << 20


class SourceError(ValueError):
    pass


def _clean(pattern: str) -> str:
    rel = posixpath.normpath("/" + pattern).lstrip("/")
    if posixpath.normpath(pattern).startswith("../") or posixpath.normpath(pattern) == "..":
        raise SourceError(f"forbidden path outside the build context: {pattern}")
    return "" if rel in ("", ".") else rel


def _ignored(rules: IgnoreRules | None, rel: str) -> bool:
    return bool(rel) and rules is not None and rules.excluded(rel)


def expand_source(root: Path, pattern: str, rules: IgnoreRules | None) -> list[str]:
    """The paths (relative to `root`, "" for the root itself) that `pattern` names, in sorted order."""
    rel = _clean(pattern)
    if not rel:
        return [""]
    candidates = [""]
    for part in rel.split("/"):
        found: list[str] = []
        for base in candidates:
            directory = root / base if base else root
            if not (_MAGIC & set(part)):
                path = f"{base}/{part}" if base else part
                if os.path.lexists(root / path):
                    found.append(path)
                continue
            try:
                names = sorted(os.listdir(directory))
            except (NotADirectoryError, FileNotFoundError):
                continue
            found += [f"{base}/{n}" if base else n for n in names if fnmatch.fnmatchcase(n, part)]
        candidates = found
    return [c for c in candidates if not _ignored(rules, c)]


def walk(root: Path, rel: str, rules: IgnoreRules | None) -> Iterator[tuple[str, os.stat_result]]:
    """`rel` and, for a directory, everything below it that the rules keep, parents before children."""
    path = root / rel if rel else root
    st = os.lstat(path)
    yield rel, st
    if not stat.S_ISDIR(st.st_mode):
        return
    for name in sorted(os.listdir(path)):
        child = f"{rel}/{name}" if rel else name
        if _ignored(rules, child):
            if rules is not None and rules.has_exceptions and os.path.isdir(root / child):
                yield from (e for e in walk(root, child, rules) if not _ignored(rules, e[0]))
            continue
        yield from walk(root, child, rules)


def checksum(root: Path, patterns: list[str], rules: IgnoreRules | None) -> str:
    """A digest of everything `patterns` select below `root`; a missing source raises SourceError."""
    h = hashlib.sha256()
    for pattern in patterns:
        matches = expand_source(root, pattern, rules)
        if not matches:
            raise SourceError(f'"{pattern}" not found in the build context (or excluded by .dockerignore)')
        for match in matches:
            h.update(f"\0src {match}\0".encode())
            for rel, st in walk(root, match, rules):
                h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
                full = root / rel if rel else root
                if stat.S_ISLNK(st.st_mode):
                    h.update(os.readlink(full).encode("utf-8", "surrogateescape"))
                elif stat.S_ISREG(st.st_mode):
                    with open(full, "rb") as handle:
                        while chunk := handle.read(_CHUNK):
                            h.update(chunk)
                h.update(b"\0")
    return "sha256:" + h.hexdigest()
