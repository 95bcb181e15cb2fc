"""The ASGI middleware that writes the audit log: when an answer's status line is about to go
out, it writes the request's record (registry/audit/record.py), if it has one, first. A client
that has seen its push, delete or login acknowledged can count on the line being written.

It sits inside the request-context middleware (whose request id it records) and outside the error
handler (whose answers it sees). A pull that succeeds costs a few comparisons and writes nothing;
a pushed or mounted blob's record waits for one `stat` of the blob, for its size.
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

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                try:
                    await self._record(scope, message["status"], message.get("headers", []))
                except Exception:
                    log.exception("audit log: cannot describe %s %s", scope.get("method"), scope.get("path"))
            await send(message)

        await self.app(scope, receive, watching_send)

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
