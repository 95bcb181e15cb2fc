"""Pure ASGI middleware: request id, the API-version header and one access-log line per request."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("dockyard.access")

API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")
REQUEST_ID_HEADER = b"x-request-id"


class RequestContextMiddleware:
    """Gives every request an id (returned as `X-Request-Id`), adds the API-version header to
    every response, and logs one structured line when the response is done."""

    def __init__(self, app: ASGIApp, json_logs: bool = False, enabled: bool = True) -> None:
        self.app = app
        self.json_logs = json_logs
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope["dockyard.request_id"] = request_id
        started = time.perf_counter()
        status = 0
        sent = 0
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def wrapped_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append(API_VERSION)
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, wrapped_send)
        finally:
            if self.enabled:
                self._log(scope, request_id, status or 500, received, sent, time.perf_counter() - started)

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
        if self.json_logs:
            access_log.info(orjson.dumps(entry).decode())
        else:
            access_log.info(
                "%s %s %s %d in=%d out=%d %.1fms user=%s id=%s",
                entry["client"],
                entry["method"],
                entry["path"],
                status,
                received,
                sent,
                entry["duration_ms"],
                entry["user"] or "-",
                request_id,
            )
