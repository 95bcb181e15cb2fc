"""Turns the route table into an ASGI router: match, validate the name, authorize, handle."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from auth.base import Access, AccessController
from oci.reference import valid_name
from registry.errorhandler import MISSING_KEY
from registry.errors import ErrorCode, RegistryError
from registry.routes import ROUTES, Handler, RouteRow, compile_path


@dataclass(frozen=True)
class _Compiled:
    row: RouteRow
    pattern: re.Pattern[str]
    handler: Handler


def _accesses(row: RouteRow, name: str) -> list[Access]:
    if row.action == "base":
        return []
    if row.action == "catalog":
        return [Access("registry", "catalog", "*")]
    if row.action == "push":
        # Docker asks for pull,push together when pushing; a push also reads (HEAD, mounts).
        return [Access("repository", name, "pull"), Access("repository", name, "push")]
    return [Access("repository", name, row.action)]


# The actions that change the store: refused while the registry is read-only.
WRITE_ACTIONS = frozenset({"push", "delete"})


class RegistryRouter:
    """A pure ASGI app serving the /v2/ API from `ROUTES`.

    `prefix` (http.prefix, without its trailing slash) is where the API lives, as in
    distribution: `/registry/v2/...` is matched as `/v2/...`, and the `Location` and `Link`
    headers the handlers write point back under it. `read_only` refuses every write, here,
    where each route's action is known, so no handler can forget to.
    """

    def __init__(
        self, handlers: Mapping[str, Any], controller: AccessController, prefix: str = "", read_only: bool = False
    ) -> None:
        self._controller = controller
        self._prefix = prefix.rstrip("/")
        self._read_only = read_only
        compiled = []
        for row in ROUTES:
            group, _, method = row.handler.partition(".")
            compiled.append(_Compiled(row, compile_path(row.path), getattr(handlers[group], method)))
        self._routes = tuple(compiled)

    def match(self, method: str, path: str) -> tuple[_Compiled, dict[str, str]]:
        path_matched = False
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if method in route.row.methods:
                return route, found.groupdict()
            path_matched = True
        if path_matched:
            raise RegistryError(ErrorCode.UNSUPPORTED, message=f"method {method} not allowed here")
        raise RegistryError(ErrorCode.UNSUPPORTED, detail={"path": path}, message="no such endpoint", status=404)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        path: str = scope["path"]
        if self._prefix:
            path = path[len(self._prefix) :]
        route, params = self.match(request.method, path)
        name = params.pop("name", "")
        if route.row.action not in ("base", "catalog") and not valid_name(name):
            raise RegistryError(ErrorCode.NAME_INVALID, detail={"name": name})
        scope["path_params"] = params
        scope["dockyard.route"] = route.row.path
        scope["dockyard.repository"] = name
        scope["dockyard.action"] = route.row.action
        scope[MISSING_KEY] = route.row.missing
        grant = await self._controller.authorize(request, _accesses(route.row, name))
        request.state.grant = grant
        scope["dockyard.user"] = grant.subject
        if self._read_only and route.row.action in WRITE_ACTIONS:
            raise RegistryError(
                ErrorCode.UNSUPPORTED,
                message="the registry is read-only (storage.maintenance.readonly.enabled): no pushes or deletes",
                headers={"Allow": "GET, HEAD"},  # as distribution answers
            )
        response: Response = await route.handler(request, name)
        if self._prefix:
            _under_prefix(response, self._prefix)
        await response(scope, receive, send)


def _under_prefix(response: Response, prefix: str) -> None:
    location = response.headers.get("location")
    if location is not None and location.startswith("/v2/"):
        response.headers["location"] = prefix + location
    link = response.headers.get("link")
    if link is not None and link.startswith("</v2/"):
        response.headers["link"] = "<" + prefix + link[1:]
