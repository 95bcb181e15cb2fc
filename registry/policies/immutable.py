"""Immutable tags: once pushed, a tag matching a policy's `immutabletags` names one digest forever."""

from __future__ import annotations

from oci.digest import Digest
from registry.errors import ErrorCode, RegistryError
from registry.policies.config import PoliciesConfig


class ImmutableTags:
    def __init__(self, policies: PoliciesConfig) -> None:
        self.policies = policies

    def check_move(self, name: str, tag: str, current: Digest | None, new: Digest) -> None:
        """Refuse to point an immutable tag that exists at another digest (the same one is fine)."""
        if current is None or current == new or not self.policies.immutable(name, tag):
            return
        raise RegistryError(
            ErrorCode.TAG_INVALID,
            detail={"tag": tag, "digest": str(current)},
            message=f"tag {tag} is immutable in {name}: it names {current} and cannot be moved",
            policy="immutable",
        )

    def check_delete(self, name: str, tags: list[str]) -> None:
        """Refuse to delete an immutable tag (or a manifest an immutable tag names)."""
        for tag in tags:
            if self.policies.immutable(name, tag):
                raise RegistryError(
                    ErrorCode.DENIED,
                    detail={"tag": tag},
                    message=f"tag {tag} is immutable in {name}: it cannot be deleted",
                    policy="immutable",
                )
