"""`/healthz` (the process answers) and `/readyz` (storage can be written and read back).

Both live outside `/v2/` and need no credentials: orchestrators probe them. The readiness check
writes a small key under `dockyard/health/`, outside distribution's tree, so neither GC nor a
`registry:2` reading the same storage ever sees it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storage_backends import StorageBackend, StorageError

HEALTH_PREFIX = "dockyard/health"
# A probe storm (many kubelets, a load balancer) costs at most one storage round trip per second.
_READY_CACHE_SECONDS = 1.0
_CHECK_TIMEOUT_SECONDS = 5.0


def _json(body: dict[str, object], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class Health:
    def __init__(self, backend: StorageBackend) -> None:
        self._backend = backend
        # One key per process: replicas and workers never race on the same key.
        self._key = f"{HEALTH_PREFIX}/{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._checked_at = 0.0
        self._last: str | None = None
        self._lock = asyncio.Lock()

    async def check_storage(self) -> str | None:
        """None when a write, read-back and delete all work; else what failed."""
        token = uuid.uuid4().hex.encode()
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS):
                await self._backend.put(self._key, token)
                if await self._backend.get(self._key) != token:
                    return "storage returned different bytes than were written"
                await self._backend.delete(self._key)
        except TimeoutError:
            return f"storage did not answer within {_CHECK_TIMEOUT_SECONDS:.0f}s"
        except StorageError as exc:
            return f"storage {self._backend.name}: {exc}"
        return None

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        async with self._lock:
            now = time.monotonic()
            if now - self._checked_at >= _READY_CACHE_SECONDS:
                self._last = await self.check_storage()
                self._checked_at = time.monotonic()
            problem = self._last
        if problem is not None:
            return _json({"status": "unavailable", "storage": problem}, status=503)
        return _json({"status": "ok", "storage": "ok"})

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET", "HEAD"], name="healthz"),
            Route("/readyz", self.readyz, methods=["GET", "HEAD"], name="readyz"),
        ]
