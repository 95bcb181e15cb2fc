"""The durable queues, in the storage backend: one per endpoint (and per `dockyard events tail`).

    dockyard/events/endpoints/<endpoint>/pending/<seq>-<count>   events not yet delivered there (JSON)
    dockyard/events/endpoints/<endpoint>/lease                   which process delivers, until when
    dockyard/events/tails/<id>/alive                             a `dockyard events tail` is following
    dockyard/events/tails/<id>/pending/<seq>-<count>             events for it

Every event is written (atomically) to each queue that wants it before the request is answered, so
nothing is lost to a crash and any replica can deliver it. One object holds the events a process
wrote together (a JSON list of `<count>` events, in the order they were made; see `commit.py`).
`<seq>` sorts in the order the objects were written: `<nanoseconds>-<process>-<counter>`. Objects
from before batching are named `<seq>` and hold one event (a JSON object); they are read the same.
A delivered object is deleted from its queue, so no cursor can skip one written late by a slow
replica.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from typing import Any

import orjson

from storage_backends import PathNotFound, StorageBackend

ROOT = "dockyard/events"
ENDPOINTS = f"{ROOT}/endpoints"
TAILS = f"{ROOT}/tails"
# A tail that has not said it is alive for this long is gone (its queue is no longer written).
TAIL_ALIVE_SECONDS = 30.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

Event = dict[str, Any]


def endpoint_dir(name: str) -> str:
    """A storage-safe directory name for an endpoint: its name, cleaned, and a hash that keeps it unique."""
    slug = _UNSAFE.sub("_", name)[:40] or "_"
    return f"{ENDPOINTS}/{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def tail_dir(tail_id: str) -> str:
    return f"{TAILS}/{tail_id}"


def seq_time(name: str) -> float:
    """When the object named `name` was written (seconds since the epoch)."""
    try:
        return int(name.split("-", 1)[0]) / 1e9
    except ValueError:
        return time.time()


def object_name(seq: str, count: int) -> str:
    return f"{seq}-{count}"


def event_count(name: str) -> int:
    """How many events the object named `name` holds, from its name alone (no read): 1 for the old form."""
    parts = name.split("-")
    return int(parts[3]) if len(parts) == 4 and parts[3].isdigit() else 1


def parse(raw: bytes) -> list[Event] | None:
    """The events in a stored object, in order; None when the bytes are not events."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    events = document if isinstance(document, list) else [document]
    if not all(isinstance(event, dict) and "id" in event for event in events):
        return None
    return events


class Sequence:
    """Names for new objects, increasing within this process even if the clock steps back."""

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

    async def put(self, seq: str, events: list[Event]) -> str:
        """Write `events` as one object (durable when this returns); its name."""
        name = object_name(seq, len(events))
        await self.backend.put(f"{self.pending_dir}/{name}", orjson.dumps(events))
        return name

    async def pending(self, limit: int | None = None) -> list[str]:
        """The names of the objects waiting, oldest first."""
        return await self.backend.list(self.pending_dir, limit=limit)

    async def read_raw(self, name: str) -> bytes | None:
        """The object as stored, or None when it is gone (delivered by another process)."""
        try:
            return await self.backend.get(f"{self.pending_dir}/{name}")
        except PathNotFound:
            return None

    async def read(self, name: str) -> list[Event] | None:
        """The object's events, or None when it is gone or unreadable."""
        raw = await self.read_raw(name)
        return parse(raw) if raw is not None else None

    async def remove(self, name: str) -> None:
        await self.backend.delete(f"{self.pending_dir}/{name}")


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
