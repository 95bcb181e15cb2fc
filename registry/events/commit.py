"""Group commit: the events a process emits concurrently are written to their queues together.

While one write is in flight, new events gather; the next write takes them all, as one object per
queue that wants any of them, in the order they were emitted. Every caller returns once the write
holding its events is durable, so a burst of small pushes costs a few writes per queue rather
than one per push, and nothing is acknowledged before it is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from registry.events.queue import Event, Queue, Sequence

# An event for a queue.
Write = tuple[Queue, Event]


class _Group:
    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # When every caller waiting on it was cancelled, a failure is nobody's to report.
        self.done.add_done_callback(lambda done: done.cancelled() or done.exception())


class GroupCommit:
    """`written` is called after each durable write (to wake the deliverers)."""

    def __init__(self, sequence: Sequence, written: Callable[[], None]) -> None:
        self._sequence = sequence
        self._written = written
        self._open: _Group | None = None
        self._writer: asyncio.Task[None] | None = None

    async def append(self, writes: list[Write]) -> None:
        """Write these events (in this order) with whatever else is waiting; return once durable."""
        if not writes:
            return
        if self._open is None:
            self._open = _Group()
        group = self._open
        group.writes.extend(writes)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="events:commit")
        # A cancelled request does not cancel the write: other requests' events are in it too.
        await asyncio.shield(group.done)

    async def _drain(self) -> None:
        while self._open is not None:
            group, self._open = self._open, None
            try:
                await self._write(group.writes)
            except asyncio.CancelledError:
                group.done.cancel()  # the loop is shutting down
                raise
            except Exception as exc:
                group.done.set_exception(exc)
            else:
                group.done.set_result(None)
                self._written()

    async def _write(self, writes: list[Write]) -> None:
        by_queue: dict[str, tuple[Queue, list[Event]]] = {}
        for queue, event in writes:
            # Keyed by directory: a tail's Queue is made anew at each refresh of the tails.
            by_queue.setdefault(queue.directory, (queue, []))[1].append(event)
        seq = self._sequence.next()
        await asyncio.gather(*(queue.put(seq, events) for queue, events in by_queue.values()))
