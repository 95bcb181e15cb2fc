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
    """Foreign (non-distributable) layers with URLs live elsewhere and need not be pushed."""
    return not (descriptor.urls and descriptor.media_type == mt.DOCKER_FOREIGN_LAYER)
