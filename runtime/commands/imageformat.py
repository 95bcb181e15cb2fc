"""`images --format`: Docker's image context fields for a Go template, `table` or `json`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from oci.reference import Reference, familiar_name
from runtime.images import ImageStore, LocalImage

__all__ = ["HEADERS", "render_images"]

HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
}


def _row(store: ImageStore, image: LocalImage, trunc: bool, ago: Callable[[object], str], size: str) -> dict[str, Any]:
    ref = Reference.parse(image.reference)
    created = str(image.config.get("created") or "")
    try:
        from runtime.commands.ps import parse_time

        created_at = time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(parse_time(created)))
    except ValueError:
        created_at = ""
    return {
        "ID": image.short_id if trunc else image.id,
        "Repository": familiar_name(ref.registry, ref.repository),
        "Tag": ref.tag or "<none>",
        "Digest": ref.digest or image.manifest_digest,
        "CreatedSince": ago(created),
        "CreatedAt": created_at,
        "Size": size,
        "Containers": "N/A",
    }


def render_images(
    store: ImageStore, images: list[LocalImage], fmt: str, trunc: bool, ago: Callable[[object], str],
    size: Callable[[int], str],
) -> str:  # fmt: skip
    from runtime.listformat import render_rows

    rows = [_row(store, i, trunc, ago, size(store.size(i))) for i in images]
    return render_rows(fmt, rows, HEADERS)
