"""Pure ASGI middleware: request id, the API-version header and one access-log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.zerocopy import PATHSEND

if TYPE_CHECKING:
    from registry.metrics import Metrics

access_log = logging.getLogger("dockyard.access")

API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")
REQUEST_ID_HEADER = b"x-request-id"
# A request id set by a proxy in front (nginx's $request_id, say) is kept if it looks like one,
# so one id follows the request through both logs.
_INCOMING_ID = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")
_UPLOAD_METHODS = frozenset({"POST", "PATCH", "PUT"})


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


class RequestContextMiddleware:
    """Gives every request an id (returned as `X-Request-Id`), adds the API-version header to
    every response, logs one structured line when the response is done, and feeds `metrics`."""

    def __init__(self, app: ASGIApp, enabled: bool = True, metrics: Metrics | None = None) -> None:
        self.app = app
        self.enabled = enabled
        self.metrics = metrics
        self.uploads_in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        scope["dockyard.request_id"] = request_id
        upload = scope.get("method") in _UPLOAD_METHODS and "/blobs/uploads" in scope.get("path", "")
        if upload:
            self.uploads_in_progress += 1
            if self.metrics is not None:
                self.metrics.uploads_in_progress.inc()
        started = time.perf_counter()
        status = 0
        sent = 0
        received = 0
        length = 0  # the response's Content-Length, for a body the server sends from a file

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def wrapped_send(message: Message) -> None:
            nonlocal status, sent, length
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                length = _content_length(headers)
                headers.append(API_VERSION)
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == PATHSEND:
                sent += length
            await send(message)

        try:
            await self.app(scope, counting_receive, wrapped_send)
        finally:
            seconds = time.perf_counter() - started
            if upload:
                self.uploads_in_progress -= 1
                if self.metrics is not None:
                    self.metrics.uploads_in_progress.dec()
            status = status or 500
            if self.metrics is not None:
                self.metrics.observe_request(scope["method"], route_label(scope), status, seconds, received, sent)
            if self.enabled:
                self._log(scope, request_id, status, received, sent, seconds)

    def _log(self, scope: Scope, request_id: str, status: int, received: int, sent: int, seconds: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        entry: dict[str, Any] = {
            "request_id": request_id,
            "method": scope.get("method"),
            "path": scope.get("path"),
            "route": scope.get("dockyard.route"),
            "repository": scope.get("dockyard.repository") or None,
            "action": scope.get("dockyard.action"),
            "user": scope.get("dockyard.user"),
            "status": status,
            "bytes_in": received,
            "bytes_out": sent,
            "duration_ms": round(seconds * 1000, 2),
            "client": (scope.get("client") or ("", 0))[0],
        }
        # The JSON formatter (registry.logformat) writes `access` as the line's fields; the text
        # message is for the human format and for handlers that know nothing of `access`.
        access_log.info(
            "%s %s %s %d in=%d out=%d %.1fms user=%s repo=%s action=%s id=%s",
            entry["client"],
            entry["method"],
            entry["path"],
            status,
            received,
            sent,
            entry["duration_ms"],
            entry["user"] or "-",
            entry["repository"] or "-",
            entry["action"] or "-",
            request_id,
            extra={"access": entry},
        )


def route_label(scope: Scope) -> str:
    """The route template a request matched (never the raw path: metric labels must stay few)."""
    route = scope.get("dockyard.route")
    if route:
        return str(route)
    matched = scope.get("route")
    path = getattr(matched, "path", None)
    return str(path) if path else "other"


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _INCOMING_ID.match(value):
            return str(value.decode())
    return None
