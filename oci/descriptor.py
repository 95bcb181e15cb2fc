"""Descriptors: what a manifest says about the content it points at (image-spec descriptor.md)."""

from __future__ import annotations

from dataclasses import dataclass

from oci import mediatypes as mt
from oci.digest import Digest


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()


def must_exist(descriptor: Descriptor) -> bool:
    """Non-distributable (foreign) layers with URLs live elsewhere and need not be pushed; without
    URLs a client could fetch them from nowhere but here, so they must be (as in distribution)."""
    return not (descriptor.urls and descriptor.media_type in mt.NON_DISTRIBUTABLE_LAYERS)
