"""The only place URLs exist: one row per (method, path), in the order of the spec's endpoint table.

Repository names contain slashes, so `{name}` matches greedily up to the endpoint's suffix; the name
is then checked against the spec's regular expression before any handler runs (NAME_INVALID).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from registry.errors import ErrorCode

Action = Literal["pull", "push", "delete", "catalog", "base"]
Handler = Callable[[Request, str], Awaitable[Response]]


@dataclass(frozen=True)
class RouteRow:
    methods: tuple[str, ...]
    path: str
    handler: str  # "<group>.<method name>": resolved against the handler objects at start
    action: Action

    @property
    def missing(self) -> ErrorCode:
        """The answer when what the route reads vanishes under it (a concurrent delete won the race)."""
        return _MISSING[self.handler.partition(".")[0]]


ROUTES: tuple[RouteRow, ...] = (
    RouteRow(("GET", "HEAD"), "/v2/", "base.ping", "base"),  # end-1
    RouteRow(("GET",), "/v2/_catalog", "listing.catalog", "catalog"),  # catalog
    RouteRow(("GET", "HEAD"), "/v2/{name}/blobs/{digest}", "blobs.get_blob", "pull"),  # end-2
    RouteRow(("GET", "HEAD"), "/v2/{name}/manifests/{reference}", "manifests.get_manifest", "pull"),  # end-3
    RouteRow(("POST",), "/v2/{name}/blobs/uploads/", "uploads.start_upload", "push"),  # end-4a, end-4b, end-4c, end-11
    RouteRow(("PATCH",), "/v2/{name}/blobs/uploads/{upload_id}", "uploads.patch_upload", "push"),  # end-5
    RouteRow(("PUT",), "/v2/{name}/blobs/uploads/{upload_id}", "uploads.put_upload", "push"),  # end-6
    RouteRow(("PUT",), "/v2/{name}/manifests/{reference}", "manifests.put_manifest", "push"),  # end-7a, end-7b
    RouteRow(("GET",), "/v2/{name}/tags/list", "listing.list_tags", "pull"),  # end-8a, end-8b
    RouteRow(("DELETE",), "/v2/{name}/manifests/{reference}", "manifests.delete_manifest", "delete"),  # end-9
    RouteRow(("DELETE",), "/v2/{name}/blobs/{digest}", "blobs.delete_blob", "delete"),  # end-10
    RouteRow(("GET",), "/v2/{name}/referrers/{digest}", "listing.list_referrers", "pull"),  # end-12a, end-12b
    RouteRow(("GET",), "/v2/{name}/blobs/uploads/{upload_id}", "uploads.get_upload", "push"),  # end-13
    RouteRow(("DELETE",), "/v2/{name}/blobs/uploads/{upload_id}", "uploads.cancel_upload", "push"),  # end-14
)

_MISSING = {
    "base": ErrorCode.NAME_UNKNOWN,
    "listing": ErrorCode.NAME_UNKNOWN,
    "blobs": ErrorCode.BLOB_UNKNOWN,
    "uploads": ErrorCode.BLOB_UPLOAD_UNKNOWN,
    "manifests": ErrorCode.MANIFEST_UNKNOWN,
}


def compile_path(path: str) -> re.Pattern[str]:
    pattern = re.escape(path)
    pattern = pattern.replace(r"\{name\}", r"(?P<name>.+)")
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    if pattern.endswith("/uploads/"):
        pattern += "?"  # some clients POST without the trailing slash
    return re.compile(f"^{pattern}$")
