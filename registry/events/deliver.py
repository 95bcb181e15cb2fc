"""Delivery of one endpoint's queue: in order, at least once, backing off while the endpoint fails.

Every process runs a deliverer per endpoint; the one holding the endpoint's lease sends, the others
wait to take over. The deliverer reads the oldest objects of the queue, up to about one request's
worth of events, and sends their events in order, up to `maxevents` to a request. A request is sent
again, the same body, after each failure (the endpoint accepts with any 2xx or 3xx, as
distribution counts): right away until `threshold` failures in a row, then after `backoff`,
doubling up to 64 times `backoff`. An object is deleted once every event in it was accepted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import httpx

from registry.events.config import EndpointConfig
from registry.events.formats import SIGNATURE_HEADER, bodies, signature
from registry.events.lease import Lease
from registry.events.queue import Event, Queue, event_count, parse, seq_time

log = logging.getLogger("dockyard.events")

# When idle, the queue is listed this often (events from other replicas); local ones wake it at once.
POLL_SECONDS = 1.0
# Once woken, or after a request that did not fill up, the deliverer waits this long for more events
# to send together: under load one request carries many events, not one each.
GATHER_SECONDS = 0.05
_MAX_BACKOFF_FACTOR = 64
# Objects are read this many events at a time (at least; more when `maxevents` is larger).
_READ_EVENTS = 100


class DeliveryMetrics(Protocol):
    def observe_delivery(self, endpoint: str, ok: bool, events: int = 1) -> None: ...

    def observe_queue(self, endpoint: str, depth: int, oldest_seconds: float) -> None: ...


class _LeaseLost(Exception):
    pass


def retry_delay(failures: int, threshold: int, backoff: float) -> float:
    """How long to wait after `failures` failures in a row."""
    if failures < threshold:
        return 0.0
    return float(backoff * min(2 ** (failures - threshold), _MAX_BACKOFF_FACTOR))


class Deliverer:
    def __init__(
        self, endpoint: EndpointConfig, queue: Queue, lease: Lease, metrics: DeliveryMetrics | None = None
    ) -> None:
        self.endpoint = endpoint
        self.queue = queue
        self.lease = lease
        self.metrics = metrics
        self.wake = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=endpoint.timeout, follow_redirects=False)

    async def run(self) -> None:
        try:
            while True:
                try:
                    if await self.lease.acquire():
                        await self._deliver_while_held()
                    else:
                        await self._sleep(self.lease.ttl / 3)
                except _LeaseLost:
                    log.info("events: another process now delivers to %s", self.endpoint.name)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("events: delivery to %s failed; retrying", self.endpoint.name)
                    await asyncio.sleep(POLL_SECONDS)
        finally:
            await self._client.aclose()

    async def close(self) -> None:
        """Give the lease up (after the task is cancelled), so another process takes over at once."""
        try:
            await self.lease.release()
        except Exception:
            log.debug("events: could not release the lease of %s", self.endpoint.name, exc_info=True)

    async def _sleep(self, seconds: float) -> bool:
        """Wait `seconds` or until woken; True when woken."""
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except TimeoutError:
            pass
        woken = self.wake.is_set()
        self.wake.clear()
        return woken

    async def _keep(self) -> None:
        if not await self.lease.keep():
            raise _LeaseLost

    async def _deliver_while_held(self) -> None:
        while True:
            await self._keep()
            pending = await self._observe()
            if not pending:
                if await self._sleep(POLL_SECONDS):
                    await asyncio.sleep(GATHER_SECONDS)
                continue
            first = self._first(pending)
            await self._deliver(first)
            if len(first) == len(pending):  # the queue was drained: let more gather
                await asyncio.sleep(GATHER_SECONDS)

    def _first(self, pending: list[str]) -> list[str]:
        """The oldest objects, holding about as many events as are read at a time (at least one object)."""
        wanted = max(self.endpoint.max_events, _READ_EVENTS)
        taken: list[str] = []
        count = 0
        for name in pending:
            count += event_count(name)
            if taken and count > wanted:
                break
            taken.append(name)
        return taken

    async def _deliver(self, names: list[str]) -> None:
        """Send the events of these objects, in order, and delete each object once all of it is accepted."""
        raws = await asyncio.gather(*(self.queue.read_raw(name) for name in names))
        events: list[Event] = []
        ends: list[tuple[int, str]] = []  # (events up to and including the object's, its name)
        for name, raw in zip(names, raws, strict=True):
            if raw is None:
                continue  # gone: another process delivered it while both held the lease
            found = parse(raw)
            if found is None:
                log.error("events: %s/%s is not an event; dropped", self.queue.pending_dir, name)
                found = []
            events.extend(found)
            ends.append((len(events), name))
        sent = 0
        ends.reverse()  # the next to finish at the end, to pop off
        await self._remove_finished(ends, sent)  # objects without events
        for body, content_type, count in bodies(events, self.endpoint.format, self.endpoint.max_events):
            await self._send_until_accepted(str(events[sent]["id"]), count, body, content_type)
            sent += count
            await self._remove_finished(ends, sent)

    async def _remove_finished(self, ends: list[tuple[int, str]], sent: int) -> None:
        finished = []
        while ends and ends[-1][0] <= sent:
            finished.append(ends.pop()[1])
        await asyncio.gather(*(self.queue.remove(name) for name in finished))

    async def _observe(self) -> list[str]:
        """List the queue, and record its depth and age."""
        pending = await self.queue.pending()
        if self.metrics is not None:
            oldest = time.time() - seq_time(pending[0]) if pending else 0.0
            depth = sum(event_count(name) for name in pending)
            self.metrics.observe_queue(self.endpoint.name, depth, max(oldest, 0.0))
        return pending

    async def _send_until_accepted(self, first_id: str, count: int, body: bytes, content_type: str) -> None:
        """POST the body until the endpoint takes it; `count` events, the first one `first_id`."""
        headers = [*self.endpoint.header_pairs, ("Content-Type", content_type)]
        if self.endpoint.secret:
            headers.append((SIGNATURE_HEADER, signature(self.endpoint.secret, body)))
        failures = 0
        while True:
            await self._keep()
            problem = await self._post(body, headers)
            if self.metrics is not None:
                self.metrics.observe_delivery(self.endpoint.name, problem is None, count)
            if problem is None:
                return
            failures += 1
            await self._observe()  # while the endpoint fails, the queue behind it grows: show it
            delay = retry_delay(failures, self.endpoint.threshold, self.endpoint.backoff)
            log.warning(
                "events: %s did not take %d event(s) from %s on (%s); attempt %d, next in %.1fs",
                self.endpoint.name,
                count,
                first_id,
                problem,
                failures,
                delay,
            )
            deadline = time.monotonic() + delay
            while (left := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(left, self.lease.ttl / 3))
                await self._keep()

    async def _post(self, body: bytes, headers: list[tuple[str, str]]) -> str | None:
        """None when the endpoint accepted the request, else what went wrong."""
        try:
            response = await self._client.post(self.endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 400:
            return None
        return f"HTTP {response.status_code}"
