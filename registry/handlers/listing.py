"""Tag lists, the catalog and the referrers API: the read-only listings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from oci import mediatypes as mt
from oci.digest import Digest
from registry.handlers.common import query_int
from registry.store import Store


def _json(data: Any, headers: dict[str, str] | None = None, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(data), headers=headers, media_type=media_type)


def _next_link(path: str, n: int, last: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    query = urlencode({**(extra or {}), "n": n, "last": last})
    return {"Link": f'<{path}?{query}>; rel="next"'}


@dataclass
class ListingHandlers:
    store: Store

    async def list_tags(self, request: Request, name: str) -> Response:
        """end-8a/8b: GET /v2/<name>/tags/list[?n=&last=]."""
        n = query_int(request, "n")
        last = request.query_params.get("last") or None
        tags = await self.store.tags(name, last=last, n=None if n is None else n + 1)
        headers: dict[str, str] = {}
        if n is not None and len(tags) > n:
            tags = tags[:n]
            headers = _next_link(f"/v2/{name}/tags/list", n, tags[-1]) if tags else {}
        return _json({"name": name, "tags": tags}, headers)

    async def catalog(self, request: Request, name: str) -> Response:
        """GET /v2/_catalog[?n=&last=]: the repositories the caller may pull."""
        n = query_int(request, "n")
        last = request.query_params.get("last") or None
        grant = getattr(request.state, "grant", None)
        names = [
            repo
            for repo in await self.store.catalog(last=last)
            if grant is None or grant.allows("repository", repo, "pull")
        ]
        headers: dict[str, str] = {}
        if n is not None and len(names) > n:
            names = names[:n]
            headers = _next_link("/v2/_catalog", n, names[-1]) if names else {}
        return _json({"repositories": names}, headers)

    async def list_referrers(self, request: Request, name: str) -> Response:
        """end-12a/12b: GET /v2/<name>/referrers/<digest>[?artifactType=]."""
        subject = Digest.parse(request.path_params["digest"])
        artifact_type = request.query_params.get("artifactType") or None
        referrers = await self.store.referrers(name, subject, artifact_type)
        manifests = []
        for ref in referrers:
            descriptor: dict[str, Any] = {"mediaType": ref.media_type, "digest": str(ref.digest), "size": ref.size}
            if ref.artifact_type:
                descriptor["artifactType"] = ref.artifact_type
            if ref.annotations:
                descriptor["annotations"] = ref.annotations
            manifests.append(descriptor)
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else None
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
        return _json(index, headers, media_type=mt.OCI_INDEX)
