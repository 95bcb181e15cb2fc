"""When tags were last pulled: batched in memory, written to storage once per flush interval.

One small key per pulled tag (`repositories/<name>/_dockyard/pulled/<tag>`, a name distribution
ignores) holding the time as text; several replicas write the same key, and the latest write is
close enough to the latest pull for retention's `keepwithin`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from registry import paths
from storage_backends import PathNotFound, StorageBackend

log = logging.getLogger("dockyard.policies")


def pulled_key(name: str, tag: str) -> str:
    return f"{paths.repository(name)}/_dockyard/pulled/{tag}"


class PullRecorder:
    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self._pending: dict[tuple[str, str], float] = {}

    def record(self, name: str, tag: str) -> None:
        """Called on every pull of a tag: no I/O, just the latest time in memory."""
        self._pending[(name, tag)] = time.time()

    async def flush(self) -> int:
        pending, self._pending = self._pending, {}
        for (name, tag), when in pending.items():
            try:
                await self.backend.put(pulled_key(name, tag), repr(when).encode())
            except Exception:
                log.warning("could not record the pull time of %s:%s", name, tag, exc_info=True)
        return len(pending)

    async def loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush()


async def last_pulled(backend: StorageBackend, name: str, tag: str) -> float:
    try:
        return float((await backend.get(pulled_key(name, tag))).decode())
    except (PathNotFound, ValueError, UnicodeDecodeError):
        return 0.0
