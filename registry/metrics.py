"""Prometheus metrics: what the server counts, the `/metrics` endpoint, and a storage wrapper that
counts backend failures.

Each app gets its own `Metrics` (and registry), so tests can build many apps in one process.
With several uvicorn workers every worker is its own process: prometheus-client's multiprocess
mode (`prepare_multiprocess`, called by `serve` before the workers start) makes each worker write
its samples to files in one directory, and whichever worker answers a scrape adds them all up.
"""

from __future__ import annotations

import atexit
import hmac
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.config import ConfigError, MetricsConfig
from storage_backends import BlobWriter, FileInfo, StorageBackend
from storage_backends.errors import InvalidOffset, InvalidPath, PathNotFound, StorageError

# prometheus-client reads this variable when it is imported: it must be set before the workers start.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Manifest GETs take milliseconds, layer uploads minutes: the buckets span both.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

# Failures that are answers, not faults: a missing key is how "not found" is spelled.
_NOT_FAULTS = (PathNotFound, InvalidPath, InvalidOffset)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "dockyard_http_requests", "HTTP requests served", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "dockyard_http_request_duration_seconds",
            "Time from request start to the end of the response",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.received = Counter("dockyard_http_received_bytes", "Request body bytes received", ["route"], registry=r)
        self.sent = Counter("dockyard_http_sent_bytes", "Response body bytes sent", ["route"], registry=r)
        self.uploads_in_progress = Gauge(
            "dockyard_uploads_in_progress",
            "Upload requests (POST, PATCH, PUT of blob data) being received now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.storage_errors = Counter(
            "dockyard_storage_errors", "Storage backend operations that failed", ["backend", "operation"], registry=r
        )
        self.gc_runs = Counter("dockyard_gc_runs", "Garbage collection runs", ["result"], registry=r)
        self.gc_freed_bytes = Counter("dockyard_gc_freed_bytes", "Bytes of blobs deleted by GC", registry=r)
        self.gc_freed_blobs = Counter("dockyard_gc_freed_blobs", "Blobs deleted by GC", registry=r)
        self.quota_used = Gauge(
            "dockyard_quota_used_bytes",
            "Bytes stored under a quota (as last computed from the store)",
            ["quota"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.quota_limit = Gauge(
            "dockyard_quota_limit_bytes", "A quota's limit", ["quota"], registry=r, multiprocess_mode="mostrecent"
        )
        # Gauges read from the store when scraped (quota usage, which other replicas change too).
        self.before_scrape: list[Callable[[], Awaitable[object]]] = []

        self.events_delivered = Counter(
            "dockyard_events_delivered", "Events an endpoint accepted", ["endpoint"], registry=r
        )
        self.events_failed = Counter(
            "dockyard_events_failed", "Requests to an endpoint that failed (each is retried)", ["endpoint"], registry=r
        )
        self.events_queue_depth = Gauge(
            "dockyard_events_queue_depth",
            "Events waiting for an endpoint (as its deliverer last listed them)",
            ["endpoint"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.events_oldest_pending = Gauge(
            "dockyard_events_oldest_pending_seconds",
            "Age of the oldest event waiting for an endpoint",
            ["endpoint"],
            registry=r,
            multiprocess_mode="mostrecent",
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float, received: int, sent: int) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if received:
            self.received.labels(route).inc(received)
        if sent:
            self.sent.labels(route).inc(sent)

    def observe_gc(self, ok: bool, blobs: int, freed_bytes: int) -> None:
        self.gc_runs.labels("success" if ok else "failure").inc()
        if blobs:
            self.gc_freed_blobs.inc(blobs)
        if freed_bytes:
            self.gc_freed_bytes.inc(freed_bytes)

    def observe_quota(self, quota: str, limit: int, used: int) -> None:
        self.quota_limit.labels(quota).set(limit)
        self.quota_used.labels(quota).set(used)

    def observe_delivery(self, endpoint: str, ok: bool, events: int = 1) -> None:
        """A request to `endpoint` with `events` events: accepted (counts the events) or failed (counts one)."""
        if ok:
            self.events_delivered.labels(endpoint).inc(events)
        else:
            self.events_failed.labels(endpoint).inc()

    def observe_queue(self, endpoint: str, depth: int, oldest_seconds: float) -> None:
        self.events_queue_depth.labels(endpoint).set(depth)
        self.events_oldest_pending.labels(endpoint).set(oldest_seconds)

    def render(self) -> bytes:
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            merged = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


def prepare_multiprocess(workers: int) -> str | None:
    """Give worker processes a fresh shared metrics directory; returns it (None for one worker).

    A directory named in the environment already (by an operator, on a writable volume) is
    emptied and reused; otherwise one is made under the temp dir (on a read-only root filesystem,
    mount /tmp writable as the Kubernetes manifests do).
    """
    if workers <= 1:
        return None
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        directory = tempfile.mkdtemp(prefix="dockyard-metrics-")
        os.environ[MULTIPROC_ENV] = directory
        atexit.register(shutil.rmtree, directory, True)
    return directory


def mark_worker_dead(pid: int) -> None:
    """Drop a finished worker's live gauges (uploads in progress) from the sums."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        prometheus_multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def metrics_route(config: MetricsConfig, metrics: Metrics) -> Route:
    """`GET <metrics.path>`: the exposition text; a bearer token when `metrics.token` is set."""
    if not config.path.startswith("/") or config.path == "/v2" or config.path.startswith("/v2/"):
        raise ConfigError(f"metrics.path: {config.path!r} must start with / and lie outside /v2/")
    expected = f"Bearer {config.token}".encode() if config.token else None

    async def endpoint(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return Response(
                    b"metrics need a bearer token\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                    media_type="text/plain",
                )
        for refresh in metrics.before_scrape:
            await refresh()
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Route(config.path, endpoint, methods=["GET"], name="metrics")


class _CountingWriter:
    def __init__(self, inner: BlobWriter, count: Callable[[str], None]) -> None:
        self._inner = inner
        self._count = count

    @property
    def size(self) -> int:
        return self._inner.size

    async def write(self, data: bytes) -> None:
        try:
            await self._inner.write(data)
        except StorageError as exc:
            self._failed("write", exc)
            raise

    async def commit(self) -> None:
        try:
            await self._inner.commit()
        except StorageError as exc:
            self._failed("commit", exc)
            raise

    async def cancel(self) -> None:
        await self._inner.cancel()

    def _failed(self, operation: str, exc: StorageError) -> None:
        if not isinstance(exc, _NOT_FAULTS):
            self._count(operation)


class InstrumentedBackend:
    """A `StorageBackend` that passes every call through and counts the failures in `metrics`. A
    `Wrapper`: the inner backend's optional features (a local path for sendfile, say) are reached
    through `storage_backends.innermost`, so their failures are not counted here."""

    def __init__(self, inner: StorageBackend, metrics: Metrics) -> None:
        self.inner = inner
        self.name = inner.name
        self._errors = metrics.storage_errors

    def _count(self, operation: str) -> None:
        self._errors.labels(self.name, operation).inc()

    def _failed(self, operation: str, exc: BaseException) -> None:
        if isinstance(exc, StorageError) and not isinstance(exc, _NOT_FAULTS):
            self._count(operation)

    async def get(self, key: str) -> bytes:
        try:
            return await self.inner.get(key)
        except StorageError as exc:
            self._failed("get", exc)
            raise

    async def put(self, key: str, data: bytes) -> None:
        try:
            await self.inner.put(key, data)
        except StorageError as exc:
            self._failed("put", exc)
            raise

    async def reader(
        self, key: str, offset: int = 0, length: int | None = None, chunk_size: int = 1024 * 1024
    ) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner.reader(key, offset, length, chunk_size):
                yield chunk
        except StorageError as exc:
            self._failed("read", exc)
            raise

    async def writer(self, key: str, append: bool = False) -> BlobWriter:
        try:
            inner = await self.inner.writer(key, append)
        except StorageError as exc:
            self._failed("write", exc)
            raise
        return _CountingWriter(inner, self._count)

    async def stat(self, key: str) -> FileInfo:
        try:
            return await self.inner.stat(key)
        except StorageError as exc:
            self._failed("stat", exc)
            raise

    async def list(self, prefix: str, after: str | None = None, limit: int | None = None) -> list[str]:
        try:
            return await self.inner.list(prefix, after, limit)
        except StorageError as exc:
            self._failed("list", exc)
            raise

    async def move(self, src: str, dst: str) -> None:
        try:
            await self.inner.move(src, dst)
        except StorageError as exc:
            self._failed("move", exc)
            raise

    async def delete(self, key: str) -> None:
        try:
            await self.inner.delete(key)
        except StorageError as exc:
            self._failed("delete", exc)
            raise

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        return await self.inner.redirect_url(key, method)

    async def close(self) -> None:
        await self.inner.close()
