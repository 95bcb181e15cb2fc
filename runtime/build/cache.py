"""The build cache, kept in the image store (`images/buildcache/<key>.json`).

A step's key digests its parent's key, the instruction with its variables substituted, the build args a
RUN sees and, for COPY and ADD, the checksum of the files they copy; so a change to any of them misses
and everything after rebuilds. A record holds what the step produced (its layer, or none) and when, so a
fully cached build gives the same image id again. `image prune` and `builder prune` drop the records;
the store's pruning keeps every layer and blob a record names until then."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from runtime.atomicfile import write_atomic
from runtime.images import ImageStore

__all__ = ["BuildCache", "CachedStep", "LayerRef", "step_key"]


@dataclass(frozen=True)
class LayerRef:
    """One layer of an image being built: its diff id and the blob a manifest names."""

    diff_id: str
    digest: str
    size: int
    media_type: str

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class CachedStep:
    layer: LayerRef | None
    created: str


def step_key(parent: str, *parts: object) -> str:
    data = json.dumps([parent, *parts], separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


class BuildCache:
    def __init__(self, store: ImageStore, enabled: bool = True) -> None:
        self.store = store
        self.enabled = enabled

    def get(self, key: str) -> CachedStep | None:
        if not self.enabled:
            return None
        try:
            doc = json.loads((self.store.build_cache_dir / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return None
        layer = doc.get("layer")
        if layer is None:
            return CachedStep(None, str(doc.get("created", "")))
        ref = LayerRef(layer["diff_id"], layer["digest"], int(layer["size"]), layer["media_type"])
        if not (self.store.has_layer(ref.diff_id) and self.store.has_blob(ref.digest)):
            return None  # pruned meanwhile: rebuild
        return CachedStep(ref, str(doc.get("created", "")))

    def put(self, key: str, step: CachedStep) -> None:
        layer = step.layer
        doc: dict[str, Any] = {
            "created": step.created,
            "layer": None
            if layer is None
            else {"diff_id": layer.diff_id, "digest": layer.digest, "size": layer.size, "media_type": layer.media_type},
            # What the store's pruning must keep for this record (runtime/images.py).
            "diff_ids": [] if layer is None else [layer.diff_id],
            "blobs": [] if layer is None else [layer.digest],
        }
        self.store.build_cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.store.build_cache_dir / f"{key}.json", json.dumps(doc).encode())
