"""Images for the runtime tests, written straight into a local image store (no registry), with the
same layer builder rt-images' tests use; the e2e test goes through a real registry and pull."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runtime.images import ImageStore, LocalImage
from runtime.layers import unpack
from tests import imagebuild


def seed(root: Path, ref: str, layers: Sequence[imagebuild.Layer], config: dict[str, Any] | None = None) -> LocalImage:
    """Store an image made of `layers` (bottom to top) under `ref`, as a pull would."""
    store = ImageStore(root)
    store.ensure_dirs()
    image = imagebuild.build_image(imagebuild.ImageSpec(list(layers), config or {}))
    for layer in image.layers:
        if store.has_layer(layer.diff_id):
            continue
        staged = store.tempdir()
        (staged / "diff").mkdir()
        result = unpack(io.BytesIO(layer.blob), staged / "diff")
        store.commit_layer(staged, result.diff_id, result.size)
    store.put_blob(image.config, image.id)
    store.put_blob(image.manifest, image.manifest_digest)
    store.tag(ref, image.manifest_digest)
    resolved = store.resolve(ref)
    assert resolved is not None
    return resolved


def busybox_layer(extra: Sequence[imagebuild.Entry] = ()) -> imagebuild.Layer:
    return imagebuild.layer([*imagebuild.busybox_entries(), *extra], compress=False)
