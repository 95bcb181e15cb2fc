"""Delivery of one endpoint's queue: in order, at least once, backing off while the endpoint fails.

Every process runs a deliverer per endpoint; the one holding the endpoint's lease sends, the others
wait to take over. An event stays first in the queue until the endpoint accepts it (any 2xx or 3xx,
as distribution counts), and is sent again with the same id after each failure: right away until
`threshold` failures in a row, then after `backoff`, doubling up to 64 times `backoff`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import httpx

from registry.events.config import EndpointConfig
from registry.events.formats import SIGNATURE_HEADER, encode, signature
from registry.events.lease import Lease
from registry.events.queue import Queue, seq_time

log = logging.getLogger("dockyard.events")

# When idle, the queue is listed this often (events from other replicas); local ones wake it at once.
POLL_SECONDS = 1.0
_MAX_BACKOFF_FACTOR = 64
_BATCH = 100


class DeliveryMetrics(Protocol):
    def observe_delivery(self, endpoint: str, ok: bool) -> None: ...

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

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except TimeoutError:
            pass
        self.wake.clear()

    async def _keep(self) -> None:
        if not await self.lease.keep():
            raise _LeaseLost

    async def _deliver_while_held(self) -> None:
        while True:
            await self._keep()
            pending = await self._observe()
            if not pending:
                await self._sleep(POLL_SECONDS)
                continue
            for seq in pending[:_BATCH]:
                raw = await self.queue.read_raw(seq)
                encoded = encode(raw, self.endpoint.format) if raw is not None else None
                if encoded is not None:
                    await self._send_until_accepted(seq, *encoded)
                elif raw is not None:
                    log.error("events: %s/%s is not an event; dropped", self.queue.pending_dir, seq)
                await self.queue.remove(seq)

    async def _observe(self) -> list[str]:
        """List the queue, and record its depth and age."""
        pending = await self.queue.pending()
        if self.metrics is not None:
            oldest = time.time() - seq_time(pending[0]) if pending else 0.0
            self.metrics.observe_queue(self.endpoint.name, len(pending), max(oldest, 0.0))
        return pending

    async def _send_until_accepted(self, seq: str, body: bytes, content_type: str) -> None:
        headers = [*self.endpoint.header_pairs, ("Content-Type", content_type)]
        if self.endpoint.secret:
            headers.append((SIGNATURE_HEADER, signature(self.endpoint.secret, body)))
        failures = 0
        while True:
            await self._keep()
            problem = await self._post(body, headers)
            if self.metrics is not None:
                self.metrics.observe_delivery(self.endpoint.name, problem is None)
            if problem is None:
                return
            failures += 1
            await self._observe()  # while the endpoint fails, the queue behind it grows: show it
            delay = retry_delay(failures, self.endpoint.threshold, self.endpoint.backoff)
            log.warning(
                "events: %s did not take event %s (%s); attempt %d, next in %.1fs",
                self.endpoint.name,
                seq,
                problem,
                failures,
                delay,
            )
            deadline = time.monotonic() + delay
            while (left := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(left, self.lease.ttl / 3))
                await self._keep()

    async def _post(self, body: bytes, headers: list[tuple[str, str]]) -> str | None:
        """None when the endpoint accepted the event, else what went wrong."""
        try:
            response = await self._client.post(self.endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 400:
            return None
        return f"HTTP {response.status_code}"
