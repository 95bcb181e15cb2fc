"""Who delivers an endpoint's queue: a lease object in storage, held by one process at a time.

Storage offers no compare-and-swap, so taking a lease is write-then-confirm: a process writes its
claim on a free (or expired) lease, waits a moment and reads it back; the last writer wins and the
others see its claim. Should two ever overlap, events are delivered twice (at least once, as
promised), never lost. The holder renews the lease while it delivers; a process that dies stops
renewing and another takes over once the lease expires.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson

from storage_backends import PathNotFound, StorageBackend

LEASE_SECONDS = 10.0
# How long a claim is left to settle before it is read back.
_SETTLE_SECONDS = 0.2


class Lease:
    def __init__(self, backend: StorageBackend, key: str, ttl: float = LEASE_SECONDS) -> None:
        self.backend = backend
        self.key = key
        self.ttl = ttl
        self.owner = uuid.uuid4().hex
        self._renewed = 0.0

    async def _holder(self) -> tuple[str, float] | None:
        try:
            data = orjson.loads(await self.backend.get(self.key))
            return str(data["owner"]), float(data["expires"])
        except PathNotFound:
            return None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return "", 0.0  # unreadable: as good as expired

    async def _claim(self) -> None:
        now = time.time()
        await self.backend.put(self.key, orjson.dumps({"owner": self.owner, "expires": now + self.ttl}))
        self._renewed = time.monotonic()

    async def acquire(self) -> bool:
        """Take the lease if it is free, expired or ours; True when this process holds it."""
        holder = await self._holder()
        if holder is not None and holder[0] != self.owner and holder[1] > time.time():
            return False
        await self._claim()
        await asyncio.sleep(_SETTLE_SECONDS)
        holder = await self._holder()
        return holder is not None and holder[0] == self.owner

    async def keep(self) -> bool:
        """Renew the lease when a third of it has passed; False when another process took it."""
        if time.monotonic() - self._renewed < self.ttl / 3:
            return True
        holder = await self._holder()
        if holder is not None and holder[0] != self.owner:
            return False
        await self._claim()
        return True

    async def release(self) -> None:
        holder = await self._holder()
        if holder is not None and holder[0] == self.owner:
            await self.backend.delete(self.key)
