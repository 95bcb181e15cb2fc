"""`images -f/--filter`: Docker's dangling=, reference=, label=, before= and since= filters."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from oci.reference import InvalidReference, Reference, familiar_name
from runtime.images import ImageError, ImageStore, LocalImage

__all__ = ["FILTERS", "filter_images"]

FILTERS = ("dangling", "reference", "label", "before", "since")


def _tagged(store: ImageStore) -> set[str]:
    ids = set()
    for image in store.list():
        try:
            if Reference.parse(image.reference).tag:
                ids.add(image.id)
        except InvalidReference:
            continue
    return ids


def _reference_matches(image: LocalImage, pattern: str) -> bool:
    ref = Reference.parse(image.reference)
    name = familiar_name(ref.registry, ref.repository)
    candidates = [name, f"{name}:{ref.tag}" if ref.tag else name, ref.name, str(ref)]
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)


def _created(image: LocalImage) -> str:
    return str(image.config.get("created") or "")


def filter_images(store: ImageStore, images: list[LocalImage], values: list[str]) -> list[LocalImage]:
    """Raises ValueError with Docker's wording for an unknown filter or value."""
    filters: dict[str, list[str]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise ValueError(f"bad format of filter (expected name=value): {value}")
        if key not in FILTERS:
            raise ValueError(f"Invalid filter '{key}'")
        if key == "dangling" and val.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"Invalid filter 'dangling={val}'")
        filters.setdefault(key, []).append(val)
    tagged = _tagged(store)

    def created_of(ref: str) -> str:
        try:
            other = store.resolve(ref)
        except ImageError:
            other = None
        if other is None:
            raise ValueError(f"No such image: {ref}")
        return _created(other)

    checks: dict[str, Callable[[LocalImage, str], bool]] = {
        "dangling": lambda i, v: (i.id not in tagged) == (v.lower() in ("true", "1")),
        "reference": _reference_matches,
        "label": lambda i, v: _label(i, v),
        "before": lambda i, v: _created(i) < created_of(v),
        "since": lambda i, v: _created(i) > created_of(v),
    }
    return [i for i in images if all(any(checks[k](i, v) for v in vs) for k, vs in filters.items())]


def _label(image: LocalImage, wanted: str) -> bool:
    labels = (image.config.get("config") or {}).get("Labels") or {}
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)
