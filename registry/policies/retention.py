"""Retention: which tags a repository's rules keep (zot's semantics).

A tag stays when at least one rule keeps it: among the `keeplast` most recently pushed, pushed or
pulled within `keepwithin`, or matching one of `keepmatching`. A policy without tag rules keeps
every tag. Immutable tags are always kept. Push time is the tag link's modification time as the
backend reports it (a file's mtime, an S3 object's LastModified): set when the tag is pushed, the
same on every replica, with nothing extra to write.

Tags of the referrers tag schema (`sha256-<hex>`, `sha256-<hex>.sig` as cosign writes them) stand
for the referrers of the manifest they name: they stay while that manifest does, whatever the rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from registry.policies.config import PoliciesConfig, RetentionConfig

_SUBJECT_TAG = re.compile(r"(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(\..+)?")


def subject_of(tag: str) -> str | None:
    """The digest a referrers-schema tag is about (`sha256-<hex>[.suffix]`), else None."""
    match = _SUBJECT_TAG.fullmatch(tag)
    return f"{match.group(1)}:{match.group(2)}" if match else None


@dataclass(frozen=True)
class TagTimes:
    pushed: float
    pulled: float = 0.0


def tags_to_remove(
    name: str, rules: RetentionConfig, tags: Mapping[str, TagTimes], now: float, policies: PoliciesConfig
) -> list[str]:
    """The tags no rule keeps, sorted."""
    if not rules.has_tag_rules:
        return []
    kept: set[str] = set()
    if rules.keeplast:
        newest = sorted(tags, key=lambda t: (tags[t].pushed, t), reverse=True)
        kept.update(newest[: rules.keeplast])
    if rules.keepwithin:
        cutoff = now - rules.keepwithin
        kept.update(t for t, times in tags.items() if max(times.pushed, times.pulled) >= cutoff)
    if rules.keepmatching:
        patterns = [re.compile(p) for p in rules.keepmatching]
        kept.update(t for t in tags if any(p.fullmatch(t) for p in patterns))
    kept.update(t for t in tags if policies.immutable(name, t))
    return sorted(set(tags) - kept)


def spare_referrer_tags(removed: list[str], kept_manifests: set[str]) -> list[str]:
    """`removed` without the referrers-schema tags whose subject is among the manifests that stay."""
    return [t for t in removed if subject_of(t) not in kept_manifests]
