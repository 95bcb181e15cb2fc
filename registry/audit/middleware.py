"""The ASGI middleware that writes the audit log: it watches each answer's status line and, once
the answer is sent, writes the request's record (registry/audit/record.py) if it has one.

It sits inside the request-context middleware (whose request id it records) and outside the error
handler (whose answers it sees). Nothing is awaited before or during the answer, so it adds
nothing a client waits for; a pull that succeeds costs one comparison.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oci.digest import Digest, InvalidDigest
from registry.audit.record import SIZE_WANTED, describe
from registry.audit.sink import AuditSink

log = logging.getLogger("dockyard.audit")

# The size of a blob a repository holds, or None (for a pushed or mounted blob's record).
BlobSize = Callable[[str, Digest], Awaitable[int | None]]


class AuditMiddleware:
    def __init__(self, app: ASGIApp, sink: AuditSink, trust_forwarded: bool, blob_size: BlobSize | None = None) -> None:
        self.app = app
        self.sink = sink
        self.trust_forwarded = trust_forwarded
        self.blob_size = blob_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        headers: list[tuple[bytes, bytes]] = []

        async def watching_send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
            await send(message)

        await self.app(scope, receive, watching_send)
        # Reached once the answer is sent; an answer cut off midway (the app raised) says nothing.
        if status:
            try:
                await self._record(scope, status, headers)
            except Exception:
                log.exception("audit log: cannot describe %s %s", scope.get("method"), scope.get("path"))

    async def _record(self, scope: Scope, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        record = describe(scope, status, headers, self.trust_forwarded)
        if record is None:
            return
        if record.pop(SIZE_WANTED, False) and self.blob_size is not None:
            record["size"] = await self._size(record)
        self.sink.write(record)

    async def _size(self, record: dict[str, Any]) -> int | None:
        assert self.blob_size is not None
        try:
            digest = Digest.parse(str(record.get("digest")))
        except InvalidDigest:
            return None
        try:
            return await self.blob_size(str(record["repository"]), digest)
        except Exception:
            return None  # gone already (a delete raced it): the record goes without its size
