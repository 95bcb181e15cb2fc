"""Reading the store's `<prefix>/<alg>/<hex>` directories (layer and revision links, the referrer
index, GC's doomed list) back as digests: one walk that GC, the mirror's eviction and quotas share."""

from __future__ import annotations

import contextlib

from oci.digest import Digest, InvalidDigest
from storage_backends import StorageBackend

__all__ = ["listed_digests"]


async def listed_digests(backend: StorageBackend, prefix: str) -> set[Digest]:
    """The digests laid out under `prefix` as `<alg>/<hex>` entries; names that are not digests are skipped."""
    found: set[Digest] = set()
    for algorithm in await backend.list(prefix):
        for encoded in await backend.list(f"{prefix}/{algorithm}"):
            with contextlib.suppress(InvalidDigest):
                found.add(Digest.parse(f"{algorithm}:{encoded}"))
    return found
