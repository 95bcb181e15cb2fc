"""Resource scopes as the token spec writes them: `repository:team/app:pull,push`.

Grammar: docs/spec/auth/scope.md. A repository name may carry a registry host with a port
(`localhost:5000/app`), so the type ends at the first colon and the actions start after the last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from auth.base import Access

_TYPE = re.compile(r"[a-z0-9]+(?:\([a-z0-9]+\))?")
_ACTION = re.compile(r"[a-z]*|\*")
_NAME = re.compile(r"[A-Za-z0-9._/:-]+")
MAX_SCOPES = 64


class ScopeError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Scope:
    """One resource and the actions asked for (or granted) on it."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict[str, object]:
        """The entry of a JWT `access` claim (docs/spec/auth/jwt.md)."""
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(text: str) -> Scope:
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not _TYPE.fullmatch(kind) or not name or not _NAME.fullmatch(name):
        raise ScopeError(f"malformed scope {text!r}")
    # The resource class (`repository(plugin)`) is deprecated and must be ignored.
    kind = kind.split("(", 1)[0]
    wanted: list[str] = []
    for action in actions.split(","):
        if not _ACTION.fullmatch(action):
            raise ScopeError(f"malformed action in scope {text!r}")
        if action and action not in wanted:
            wanted.append(action)
    return Scope(kind, name, tuple(wanted))


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Parse `scope` parameters: GET repeats the parameter, the OAuth2 POST separates with spaces.

    Scopes naming the same resource are merged, so the token carries one entry per resource.
    """
    merged: dict[tuple[str, str], list[str]] = {}
    for value in values:
        for item in value.split():
            scope = parse_scope(item)
            actions = merged.setdefault((scope.type, scope.name), [])
            actions.extend(a for a in scope.actions if a not in actions)
            if len(merged) > MAX_SCOPES:
                raise ScopeError("too many scopes")
    return [Scope(kind, name, tuple(actions)) for (kind, name), actions in merged.items()]


def scopes_for(accesses: Sequence[Access]) -> list[Scope]:
    """Group single accesses by resource, keeping their order: what a challenge's `scope` names."""
    merged: dict[tuple[str, str], list[str]] = {}
    for access in accesses:
        actions = merged.setdefault((access.type, access.name), [])
        if access.action not in actions:
            actions.append(access.action)
    return [Scope(kind, name, tuple(actions)) for (kind, name), actions in merged.items()]


def format_scopes(scopes: Iterable[Scope]) -> str:
    return " ".join(str(s) for s in scopes)
