"""What the handlers call: `Notifier` turns a registry operation into events, writes them to the
queues that want them before the handler answers (together with the events other requests emit at
the same time), and runs the deliverers in the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from starlette.requests import Request

from registry.events import model
from registry.events.commit import GroupCommit, Write
from registry.events.config import NotificationsConfig
from registry.events.deliver import Deliverer, DeliveryMetrics
from registry.events.lease import Lease
from registry.events.queue import Queue, Sequence, endpoint_dir, live_tails, tail_dir
from storage_backends import StorageBackend

log = logging.getLogger("dockyard.events")

# How often the list of `dockyard events tail` followers is read again.
TAILS_REFRESH_SECONDS = 3.0


class Notifier:
    def __init__(
        self,
        config: NotificationsConfig,
        backend: StorageBackend,
        source: model.Source,
        public_host: str = "",
        relative_urls: bool = False,
        prefix: str = "",
        metrics: DeliveryMetrics | None = None,
        follow_tails: bool = True,
    ) -> None:
        self.config = config
        self.backend = backend
        self.source = source
        self._public_host = public_host
        self._relative = relative_urls
        self._prefix = prefix.rstrip("/")
        self._metrics = metrics
        self._follow_tails = follow_tails
        self._commit = GroupCommit(Sequence(), self._wake)
        self.endpoints = [(endpoint, Queue(backend, endpoint_dir(endpoint.name))) for endpoint in config.active]
        self._tails: list[Queue] = []
        self._deliverers: list[Deliverer] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def active(self) -> bool:
        """Whether any queue takes events now (an endpoint, or a tail following)."""
        return bool(self.endpoints or self._tails)

    # -- making events -----------------------------------------------------------------------

    def url(self, request: Request, path: str) -> str:
        """An absolute URL of `path` on this registry, as the client reached it (distribution's rules)."""
        path = self._prefix + path
        if self._relative:
            return path
        if self._public_host:
            return self._public_host.rstrip("/") + path
        host = request.headers.get("host") or "localhost"
        return f"{request.url.scheme}://{host}{path}"

    async def emit(self, request: Request, *items: tuple[str, dict[str, Any]]) -> None:
        """Queue events (action, target), in this order, durably, before the request is answered."""
        if not self.active:
            return
        writes: list[Write] = []
        for action, target in items:
            event = model.make_event(action, target, request, self.source)
            media_type = str(target.get("mediaType") or "")
            for endpoint, queue in self.endpoints:
                if endpoint.wants(action, media_type):
                    writes.append((queue, event))
            writes.extend((queue, event) for queue in self._tails)
        await self._commit.append(writes)

    def _wake(self) -> None:
        for deliverer in self._deliverers:
            deliverer.wake.set()

    async def blob(self, request: Request, action: str, name: str, digest: str, size: int, source: str = "") -> None:
        if self.active:
            url = self.url(request, f"/v2/{name}/blobs/{digest}")
            await self.emit(request, (action, model.blob_target(name, digest, size, url, source)))

    async def manifest(
        self, request: Request, action: str, name: str, media_type: str, digest: str, body: bytes, tags: list[str]
    ) -> None:
        if not self.active:
            return
        url = self.url(request, f"/v2/{name}/manifests/{digest}")
        refs = self.config.events.includereferences
        targets = [model.manifest_target(name, media_type, digest, body, url, tag, refs) for tag in tags or [""]]
        await self.emit(request, *((action, target) for target in targets))

    async def deleted(self, request: Request, name: str, digest: str = "", tags: list[str] | None = None) -> None:
        """A manifest or blob deleted (by digest), then each tag that went with it (as distribution orders them)."""
        if not self.active:
            return
        items = [("delete", model.deleted_target(name, digest=digest))] if digest else []
        items += [("delete", model.deleted_target(name, tag=tag)) for tag in tags or []]
        await self.emit(request, *items)

    # -- delivering --------------------------------------------------------------------------

    def start(self) -> None:
        """Start a deliverer per endpoint (and the tail watcher) in the running event loop."""
        for endpoint, queue in self.endpoints:
            lease = Lease(self.backend, f"{queue.directory}/lease")
            deliverer = Deliverer(endpoint, queue, lease, self._metrics)
            self._deliverers.append(deliverer)
            self._tasks.append(asyncio.create_task(deliverer.run(), name=f"events:{endpoint.name}"))
        if self._follow_tails:
            self._tasks.append(asyncio.create_task(self._watch_tails(), name="events:tails"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for deliverer in self._deliverers:
            await deliverer.close()
        self._tasks.clear()
        self._deliverers.clear()

    async def refresh_tails(self) -> None:
        self._tails = [Queue(self.backend, tail_dir(tail_id)) for tail_id in await live_tails(self.backend)]

    async def _watch_tails(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.refresh_tails()
            except Exception:
                log.debug("events: could not list the tails", exc_info=True)
            await asyncio.sleep(max(0.0, TAILS_REFRESH_SECONDS - (time.monotonic() - started)))
