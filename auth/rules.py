"""Access rules: which user or group may pull, push or delete in which repositories.

A rule names repositories by glob (`team-a/*`; `*` also crosses `/`, and `{user}` stands for the
caller's own name), who it is for (`user:NAME`, `group:NAME`, `authenticated`, `anonymous`) and
the actions. Rights only add up: what `anonymous` may do, every logged-in user may do as well,
and `push` brings `pull` with it, since no client can push without reading the repository.
Admins may do everything. Without any configured rules every logged-in user may do everything
and anonymous callers nothing, which is what CNCF distribution does with an htpasswd file.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import yaml

from auth.config import AccessConfig
from auth.scopes import Scope
from typedconfig import ConfigError, build

log = logging.getLogger("dockyard.auth")

ROBOT_PREFIX = "robot$"
REPOSITORY_ACTIONS = frozenset({"pull", "push", "delete"})
_WHO = re.compile(r"anonymous|authenticated|(user|group):[A-Za-z0-9._@-]+")
_GLOB_SPECIAL = re.compile(r"([*?\[])")


class RobotScopes(Protocol):
    """Robot accounts (auth/robots.py): what a `robot$NAME` caller may do on a repository."""

    def robot_actions(self, user: str, repository: str) -> frozenset[str] | None:
        """None: `user` is no live robot."""
        ...


@dataclass(frozen=True)
class Identity:
    """A caller: `name` is None for anonymous callers. A robot's rights are its own scopes only."""

    name: str | None
    groups: frozenset[str] = frozenset()
    admin: bool = False
    robot: bool = False


ANONYMOUS = Identity(None)


@dataclass(frozen=True)
class Rule:
    repositories: tuple[str, ...]
    who: frozenset[str]
    actions: frozenset[str]

    def applies_to(self, identity: Identity) -> bool:
        if "anonymous" in self.who:
            return True
        if identity.name is None:
            return False
        return (
            "authenticated" in self.who
            or f"user:{identity.name}" in self.who
            or any(f"group:{g}" in self.who for g in identity.groups)
        )

    def covers(self, repository: str, identity: Identity) -> bool:
        for pattern in self.repositories:
            if "{user}" in pattern:
                if identity.name is None:
                    continue
                pattern = pattern.replace("{user}", _GLOB_SPECIAL.sub(r"[\1]", identity.name))
            if fnmatch.fnmatchcase(repository, pattern):
                return True
        return False


@dataclass(frozen=True)
class RuleSet:
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    admins: frozenset[str] = frozenset()
    rules: tuple[Rule, ...] = ()
    robots: RobotScopes | None = None

    @classmethod
    def default(cls) -> RuleSet:
        return cls(rules=(Rule(("*",), frozenset({"authenticated"}), REPOSITORY_ACTIONS),))

    @classmethod
    def from_config(cls, cfg: AccessConfig, origin: str = "auth.access") -> RuleSet:
        groups = {name: frozenset(_names(members, f"{origin}.groups.{name}")) for name, members in cfg.groups.items()}
        admins = frozenset(_who(w, groups, f"{origin}.admins") for w in cfg.admins)
        rules = []
        for i, rc in enumerate(cfg.rules):
            where = f"{origin}.rules[{i}]"
            if not rc.repositories or not rc.who or not rc.actions:
                raise ConfigError(f"{where}: a rule needs repositories, who and actions")
            actions: set[str] = set()
            for action in rc.actions:
                if action == "*":
                    actions |= REPOSITORY_ACTIONS
                elif action in REPOSITORY_ACTIONS:
                    actions.add(action)
                else:
                    raise ConfigError(f"{where}.actions: unknown action {action!r} (pull, push, delete or *)")
            if "push" in actions:
                actions.add("pull")
            who = frozenset(_who(w, groups, f"{where}.who") for w in rc.who)
            rules.append(Rule(tuple(rc.repositories), who, frozenset(actions)))
        return cls(groups, admins, tuple(rules))

    def identity(self, user: str | None) -> Identity:
        if user is None:
            return ANONYMOUS
        if self.robots is not None and user.startswith(ROBOT_PREFIX):
            return Identity(user, robot=True)
        groups = frozenset(g for g, members in self.groups.items() if user in members)
        admin = f"user:{user}" in self.admins or any(f"group:{g}" in self.admins for g in groups)
        return Identity(user, groups, admin)

    def actions(self, identity: Identity, type: str, name: str) -> frozenset[str]:
        if type == "registry":
            # The catalog is open to everyone: it lists only the repositories the caller may pull.
            return frozenset({"*"}) if name == "catalog" else frozenset()
        if type != "repository":
            return frozenset()
        if identity.robot:
            scoped = self.robots.robot_actions(identity.name or "", name) if self.robots is not None else None
            return scoped or frozenset()
        if identity.admin:
            return REPOSITORY_ACTIONS
        granted: set[str] = set()
        for rule in self.rules:
            if rule.applies_to(identity) and rule.covers(name, identity):
                granted |= rule.actions
        return frozenset(granted)

    def allows(self, identity: Identity, type: str, name: str, action: str) -> bool:
        granted = self.actions(identity, type, name)
        return action in granted or "*" in granted

    def grant(self, identity: Identity, scope: Scope) -> Scope | None:
        """The intersection of what `scope` asks for and what the rules allow; None if empty."""
        granted = self.actions(identity, scope.type, scope.name)
        kept = []
        for action in scope.actions:
            if action in granted or "*" in granted or (action == "*" and REPOSITORY_ACTIONS <= granted):
                kept.append(action)
        return Scope(scope.type, scope.name, tuple(kept)) if kept else None


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of user names")
    return list(value)


def _who(value: str, groups: Mapping[str, object], where: str) -> str:
    if not _WHO.fullmatch(value):
        raise ConfigError(f"{where}: {value!r} is not one of user:NAME, group:NAME, authenticated, anonymous")
    if value.startswith("group:") and value[6:] not in groups:
        raise ConfigError(f"{where}: unknown group {value[6:]!r}")
    return value


def load_rules_file(path: str | os.PathLike[str]) -> RuleSet:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read access rules {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"access rules {path} are not valid YAML: {exc}") from None
    if isinstance(data, dict) and "path" in data:
        raise ConfigError(f"{path}: a rules file cannot name another (path)")
    cfg: AccessConfig = build(AccessConfig, data, str(path))
    return RuleSet.from_config(cfg, str(path))


class RuleSource:
    """The rules in force: fixed, or read from a file and re-read when it changes.

    A rules file that stops parsing keeps the previous rules (and logs why), so a typo while
    editing never opens or closes the whole registry.
    """

    def __init__(
        self, rules: RuleSet, path: str = "", check_every: float = 1.0, robots: RobotScopes | None = None
    ) -> None:
        self._robots = robots
        self._rules = replace(rules, robots=robots) if robots is not None else rules
        self._path = path
        self._check_every = check_every
        self._checked = time.monotonic()
        self._stamp = _stamp(path) if path else None

    @classmethod
    def from_config(cls, cfg: AccessConfig | None, robots: RobotScopes | None = None) -> RuleSource:
        if cfg is None:
            return cls(RuleSet.default(), robots=robots)
        if cfg.path:
            if cfg.groups or cfg.admins or cfg.rules:
                raise ConfigError("auth.access: give either path or inline groups/admins/rules, not both")
            return cls(load_rules_file(cfg.path), cfg.path, robots=robots)
        return cls(RuleSet.from_config(cfg), robots=robots)

    def current(self) -> RuleSet:
        if self._path:
            now = time.monotonic()
            if now - self._checked >= self._check_every:
                self._checked = now
                stamp = _stamp(self._path)
                if stamp != self._stamp:
                    self._stamp = stamp
                    try:
                        self._rules = replace(load_rules_file(self._path), robots=self._robots)
                        log.info("access rules reloaded from %s", self._path)
                    except ConfigError as exc:
                        log.error("keeping the previous access rules: %s", exc)
        return self._rules


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
