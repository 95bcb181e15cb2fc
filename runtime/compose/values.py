"""Typed reads of a validated Compose tree (whose values the model has already checked)."""

from __future__ import annotations

__all__ = ["items", "mapping"]


def items(node: dict[str, object], key: str) -> list[object]:
    """The list at `key` ([] when absent or null)."""
    value = node.get(key)
    if value is None:
        return []
    assert isinstance(value, list), f"{key}: a list was expected"
    return value


def mapping(node: dict[str, object], key: str) -> dict[str, object]:
    """The mapping at `key` ({} when absent or null)."""
    value = node.get(key)
    if value is None:
        return {}
    assert isinstance(value, dict), f"{key}: a mapping was expected"
    return value
