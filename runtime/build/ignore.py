""".dockerignore with Docker's rules (moby/patternmatcher and its ignorefile reader).

A line starting with `#` is a comment; each pattern is trimmed, cleaned like a path and made relative (a
leading `/` dropped); `!` re-includes. Patterns are Go `filepath.Match` globs per path component (`*` and `?`
never cross `/`, `[...]` classes, `\\` escapes) plus `**`, which matches any number of directories. A path is
excluded when it, or one of its parent directories, matches; the last matching pattern wins."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IgnoreRules", "Pattern", "read_dockerignore"]

_SPECIAL = set(".+()|{}$^")


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, raw: str) -> Pattern:
        exclusion = raw.startswith("!")
        text = raw[1:] if exclusion else raw
        return cls(text, exclusion, re.compile(_to_regex(text), re.DOTALL))

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _to_regex(pattern: str) -> str:
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i < len(pattern):
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(r"\\")
        elif ch == "[":
            end = pattern.find("]", i + 1 if i < len(pattern) and pattern[i] in "!^" else i)
            if end < 0:
                out.append(r"\[")
                continue
            body = pattern[i:end]
            i = end + 1
            if body.startswith(("!", "^")):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
        elif ch in _SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append("$")
    return "".join(out)


def _clean(pattern: str) -> str:
    cleaned = posixpath.normpath(pattern)
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned.lstrip("/") or "/"
    return cleaned


@dataclass(frozen=True)
class IgnoreRules:
    patterns: tuple[Pattern, ...] = ()

    @classmethod
    def parse(cls, text: str) -> IgnoreRules:
        found: list[Pattern] = []
        for number, raw in enumerate(text.splitlines()):
            line = raw.removeprefix("\ufeff") if number == 0 else raw
            if line.startswith("#"):
                continue
            line = line.strip()
            if not line:
                continue
            invert = line.startswith("!")
            if invert:
                line = line[1:].strip()
            if line:
                line = _clean(line)
            found.append(Pattern.compile(("!" if invert else "") + line))
        return cls(tuple(found))

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether the context path `path` (relative, `/`-separated) is left out of the build context."""
        matched = False
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit:
                hit = any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched


def read_dockerignore(context: Path, dockerfile: Path | None = None) -> IgnoreRules:
    """The context's ignore rules: `<Dockerfile>.dockerignore` beside the Dockerfile first, as BuildKit
    reads it, else `.dockerignore` at the context's root."""
    candidates = []
    if dockerfile is not None:
        candidates.append(dockerfile.with_name(dockerfile.name + ".dockerignore"))
    candidates.append(context / ".dockerignore")
    for path in candidates:
        if path.is_file():
            return IgnoreRules.parse(path.read_text(errors="replace"))
    return IgnoreRules()
