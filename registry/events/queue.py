"""The durable queues, in the storage backend: one per endpoint (and per `dockyard events tail`).

    dockyard/events/endpoints/<endpoint>/pending/<seq>     an event not yet delivered there (JSON)
    dockyard/events/endpoints/<endpoint>/lease             which process delivers, until when
    dockyard/events/tails/<id>/alive                       a `dockyard events tail` is following
    dockyard/events/tails/<id>/pending/<seq>               events for it

Every event is written (atomically, one object each) to each queue that wants it before the request
is answered, so nothing is lost to a crash and any replica can deliver it. `<seq>` sorts in the order
events were made: `<nanoseconds>-<process>-<counter>`. A delivered event is deleted from its queue,
so no cursor can skip an event written late by a slow replica.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

import orjson

from storage_backends import PathNotFound, StorageBackend

ROOT = "dockyard/events"
ENDPOINTS = f"{ROOT}/endpoints"
TAILS = f"{ROOT}/tails"
# A tail that has not said it is alive for this long is gone (its queue is no longer written).
TAIL_ALIVE_SECONDS = 30.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def endpoint_dir(name: str) -> str:
    """A storage-safe directory name for an endpoint: its name, cleaned, and a hash that keeps it unique."""
    slug = _UNSAFE.sub("_", name)[:40] or "_"
    return f"{ENDPOINTS}/{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def tail_dir(tail_id: str) -> str:
    return f"{TAILS}/{tail_id}"


def seq_time(seq: str) -> float:
    """When the event named `seq` was made (seconds since the epoch)."""
    try:
        return int(seq.split("-", 1)[0]) / 1e9
    except ValueError:
        return time.time()


class Sequence:
    """Names for new events, increasing within this process even if the clock steps back."""

    def __init__(self) -> None:
        self._process = uuid.uuid4().hex[:8]
        self._last = 0
        self._counter = 0

    def next(self) -> str:
        self._last = max(self._last + 1, time.time_ns())
        self._counter = (self._counter + 1) % 1_000_000
        return f"{self._last:020d}-{self._process}-{self._counter:06d}"


class Queue:
    """One queue of events (an endpoint's or a tail's) below `directory`."""

    def __init__(self, backend: StorageBackend, directory: str) -> None:
        self.backend = backend
        self.directory = directory
        self.pending_dir = f"{directory}/pending"

    async def put(self, seq: str, event: dict[str, Any]) -> None:
        await self.backend.put(f"{self.pending_dir}/{seq}", orjson.dumps(event))

    async def pending(self, limit: int | None = None) -> list[str]:
        return await self.backend.list(self.pending_dir, limit=limit)

    async def read_raw(self, seq: str) -> bytes | None:
        """The event's JSON as stored, or None when it is gone (delivered by another process)."""
        try:
            return await self.backend.get(f"{self.pending_dir}/{seq}")
        except PathNotFound:
            return None

    async def read(self, seq: str) -> dict[str, Any] | None:
        """The event, or None when it is gone or unreadable."""
        raw = await self.read_raw(seq)
        try:
            event = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            return None
        return event if isinstance(event, dict) else None

    async def remove(self, seq: str) -> None:
        await self.backend.delete(f"{self.pending_dir}/{seq}")


async def append(writes: Iterable[tuple[Queue, str, dict[str, Any]]]) -> None:
    """Write events to queues, all at once; returns when every one is durable."""
    await asyncio.gather(*(queue.put(seq, event) for queue, seq, event in writes))


async def live_tails(backend: StorageBackend) -> list[str]:
    """The ids of the tails following now; what gone ones left behind is deleted."""
    found = []
    now = time.time()
    for tail_id in await backend.list(TAILS):
        try:
            info = await backend.stat(f"{tail_dir(tail_id)}/alive")
        except PathNotFound:
            # A tail writes `alive` first and deletes it last: without it, this is an event a server
            # queued while the tail was leaving.
            await backend.delete(tail_dir(tail_id))
            continue
        if now - info.modified < TAIL_ALIVE_SECONDS:
            found.append(tail_id)
        elif now - info.modified > 10 * TAIL_ALIVE_SECONDS:
            await backend.delete(tail_dir(tail_id))  # killed long ago
    return found
