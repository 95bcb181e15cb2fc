"""The `policies` and `quotas` config sections (typed, owned here; composed by registry/config.py)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from typedconfig import ConfigError, Duration, duration

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`10GiB`, `500MB`, `1024`: bytes."""
    match = _SIZE.fullmatch(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a size like 500MiB or 10GB")
    unit = (match.group(2) or "").lower().rstrip("b")
    base = 1024 if unit.endswith("i") else 1000
    unit = unit.rstrip("i")
    if unit and unit not in "kmgtp":
        raise ValueError(f"{text!r} is not a size like 500MiB or 10GB")
    factor = base ** ("kmgtp".index(unit) + 1) if unit else 1
    return int(float(match.group(1)) * factor)


def glob_matches(pattern: str, name: str) -> bool:
    """`*` stays within one path component, `**` crosses them."""
    regex = re.escape(pattern).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace("\0", ".*")
    regex = regex.replace(r"\?", "[^/]")
    return re.fullmatch(regex, name) is not None


def tag_matches(pattern: str, tag: str) -> bool:
    return fnmatch.fnmatchcase(tag, pattern)


@dataclass(frozen=True)
class RetentionConfig:
    """zot's semantics: a tag stays when at least one rule keeps it; no rules keep everything."""

    # Keep the N most recently pushed tags (0: no such rule).
    keeplast: int = 0
    # Keep tags pushed or pulled within this long (0: no such rule).
    keepwithin: Duration = duration("0s")
    # Keep tags matching any of these regular expressions (whole tag).
    keepmatching: list[str] = field(default_factory=list)
    # Delete manifests no tag reaches once older than this (0: untagged manifests are not deleted here).
    untaggedolderthan: Duration = duration("0s")

    def __post_init__(self) -> None:
        if self.keeplast < 0:
            raise ConfigError("policies: retention.keeplast cannot be negative")
        for pattern in self.keepmatching:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"policies: retention.keepmatching: {pattern!r}: {exc}") from None

    @property
    def has_tag_rules(self) -> bool:
        return bool(self.keeplast or self.keepwithin or self.keepmatching)


@dataclass(frozen=True)
class PolicyConfig:
    # Repository glob: `team/*`, `team/**`, `**`.
    repositories: str = "**"
    # Tag patterns (shell globs: `release-*`, `v*.*.*`) that cannot be moved or deleted once pushed.
    immutabletags: list[str] = field(default_factory=list)
    retention: RetentionConfig | None = None


@dataclass(frozen=True)
class PoliciesConfig:
    repositories: list[PolicyConfig] = field(default_factory=list)
    # How often a replica writes the pull times it has batched in memory.
    pullflushinterval: Duration = duration("30s")

    def policy_for(self, name: str) -> PolicyConfig | None:
        for policy in self.repositories:
            if glob_matches(policy.repositories, name):
                return policy
        return None

    def immutable(self, name: str, tag: str) -> bool:
        policy = self.policy_for(name)
        return policy is not None and any(tag_matches(p, tag) for p in policy.immutabletags)

    @property
    def retains(self) -> bool:
        return any(p.retention is not None for p in self.repositories)


@dataclass(frozen=True)
class QuotaLimitConfig:
    # Either a namespace (the first path component: `team`) or a repository glob (`team/app*`).
    namespace: str = ""
    repositories: str = ""
    # Maximum stored bytes (`10GiB`); blobs shared within the namespace or glob count once.
    maxsize: str = ""

    def __post_init__(self) -> None:
        if bool(self.namespace) == bool(self.repositories):
            raise ConfigError("quotas.limits: give exactly one of namespace or repositories")
        if "/" in self.namespace:
            raise ConfigError(f"quotas.limits: namespace {self.namespace!r} is one path component")
        try:
            parse_size(self.maxsize)
        except ValueError as exc:
            raise ConfigError(f"quotas.limits: maxsize: {exc}") from None

    @property
    def bytes(self) -> int:
        return parse_size(self.maxsize)

    @property
    def key(self) -> str:
        return f"ns:{self.namespace}" if self.namespace else f"glob:{self.repositories}"

    def covers(self, name: str) -> bool:
        if self.namespace:
            return name.split("/", 1)[0] == self.namespace
        return glob_matches(self.repositories, name)


@dataclass(frozen=True)
class QuotasConfig:
    limits: list[QuotaLimitConfig] = field(default_factory=list)

    def limits_for(self, name: str) -> list[QuotaLimitConfig]:
        return [limit for limit in self.limits if limit.covers(name)]
