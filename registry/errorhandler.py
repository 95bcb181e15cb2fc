"""The one error handler: whatever a request raises is answered with the spec's JSON error body.

It runs inside the request-context middleware, so an error answer (a 500 too) carries
`X-Request-Id` and `Docker-Distribution-Api-Version` like any other response.
"""

from __future__ import annotations

import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.errors import ErrorCode, RegistryError, registry_error

log = logging.getLogger("dockyard")

# Set by the router once a request matched a route: the code for content that vanished under it.
MISSING_KEY = "dockyard.missing"
# Set here on every error answer: the error itself, for the audit log (registry/audit).
ERROR_KEY = "dockyard.error"


def error_response(error: RegistryError) -> Response:
    return Response(
        orjson.dumps(error.body()), status_code=error.status, headers=error.headers, media_type="application/json"
    )


async def propagate(request: Request, exc: Exception) -> Response:
    """Starlette answers its own `HTTPException`s in plain text unless given a handler: this one
    hands them on to `ErrorHandler`."""
    raise exc


class ErrorHandler:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise  # the status line is gone: all that is left is to cut the connection
            error = registry_error(exc, scope.get(MISSING_KEY, ErrorCode.NAME_UNKNOWN))
            scope[ERROR_KEY] = error
            if error.status >= 500:
                _log(scope, exc, error)
            if error.code is ErrorCode.UNKNOWN:
                # The id finds the traceback in the log; the body never carries one.
                error.detail = {"request_id": scope.get("dockyard.request_id")}
            await error_response(error)(scope, receive, send)


def _log(scope: Scope, exc: Exception, error: RegistryError) -> None:
    where = (scope.get("method"), scope.get("path"), scope.get("dockyard.request_id"))
    if error.code is ErrorCode.UNKNOWN:
        log.error("unexpected error on %s %s (request %s)", *where, exc_info=exc)
    else:
        log.error("%s on %s %s (request %s): %s", error.code.name, *where, exc)
