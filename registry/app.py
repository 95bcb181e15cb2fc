"""`create_app(config)`: wires the backend, the store, the access controller, the routes, the
single error handler and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from auth.base import AccessController, ServesRoutes
from auth.factory import open_controller
from registry.config import Config
from registry.dispatch import RegistryRouter
from registry.errorhandler import ErrorHandler, propagate
from registry.events.install import install as install_events
from registry.handlers.blobs import BlobHandlers
from registry.handlers.listing import ListingHandlers
from registry.handlers.manifests import ManifestHandlers
from registry.handlers.uploads import UploadHandlers
from registry.headers import ConfiguredHeaders
from registry.health import Health
from registry.metrics import InstrumentedBackend, Metrics, mark_worker_dead, metrics_route
from registry.middleware import RequestContextMiddleware
from registry.policies.install import install as install_policies
from registry.store import Store
from storage_backends import StorageBackend, open_backend

log = logging.getLogger("dockyard")


def create_app(
    config: Config, backend: StorageBackend | None = None, controller: AccessController | None = None
) -> Starlette:
    """Build the registry's ASGI app from its config (and optionally a given backend/controller)."""
    if backend is None:
        backend = open_backend(config.storage.driver, config.storage.driver_options)
    if controller is None:
        controller = open_controller(config.auth, config.auth_context)
    metrics = Metrics()
    backend = InstrumentedBackend(backend, metrics)
    store = Store(backend, delete_enabled=config.storage.delete.enabled)
    pulls = install_policies(config, store, metrics)
    notifier = install_events(config, backend, metrics)
    handlers: dict[str, Any] = {
        "base": _Base(),
        "blobs": BlobHandlers(store, redirect=not config.storage.redirect.disable, events=notifier),
        "uploads": UploadHandlers(store, events=notifier),
        "manifests": ManifestHandlers(store, events=notifier),
        "listing": ListingHandlers(store),
    }
    # A pull-through cache wraps the handlers; its upstream clients close with the app.
    mirror = None
    if config.proxy is not None:
        # Loaded only for a mirror: its upstream client (httpx) costs every worker ~10 MiB.
        from registry.proxy.install import install as install_mirror
        from registry.proxy.spools import spool_directory

        mirror = install_mirror(config.proxy, store, handlers, metrics.registry, spool_directory(config))
    read_only = config.storage.maintenance.readonly.enabled
    prefix = config.http.prefix.rstrip("/")
    router = RegistryRouter(handlers, controller, prefix, read_only)
    routes: list[BaseRoute] = list(controller.routes) if isinstance(controller, ServesRoutes) else []
    # Probes and metrics live outside /v2/: no registry auth, and never confused with a repository.
    routes.extend(Health(backend).routes())
    if config.metrics.enabled:
        routes.append(metrics_route(config.metrics, metrics))
    routes.append(Route(prefix + "/v2/{rest:path}", endpoint=router))
    if config.ui.enabled:
        from registry.ui.app import ui_routes  # the UI's templates load only when it is on

        routes.extend(ui_routes(config, store, controller, notifier))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        purge = config.storage.maintenance.uploadpurging
        task = None
        # Read-only means nothing in storage changes: no purging, no collecting (as distribution).
        if purge.enabled and not purge.dryrun and not read_only:
            task = asyncio.create_task(_purge_loop(store, purge.age, purge.interval))
        gc_task = None
        if config.gc.interval > 0 and not read_only:
            from registry.gc import gc_loop

            def record(report: Any) -> None:
                ok = report is not None
                metrics.observe_gc(ok, len(report.blobs) if ok else 0, report.freed_bytes if ok else 0)
                if ok and store.uploads.quota is not None:
                    for usage in report.quotas:
                        metrics.observe_quota(usage.limit.key, usage.limit.bytes, usage.used)

            gc_task = asyncio.create_task(gc_loop(backend, config, record))
        pulls_task = None
        if pulls is not None:
            pulls_task = asyncio.create_task(pulls.loop(config.policies.pullflushinterval))
        if not read_only:
            notifier.start()
        try:
            yield
        finally:
            for running in (task, gc_task, pulls_task):
                if running is not None:
                    running.cancel()
            await notifier.stop()
            if pulls is not None:
                await pulls.flush()
            if mirror is not None:
                await mirror.aclose()
            await backend.close()
            mark_worker_dead(os.getpid())

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: propagate},
    )
    app.router.redirect_slashes = False
    app.state.config = config
    app.state.store = store
    app.state.backend = backend
    app.state.controller = controller
    app.state.metrics = metrics
    app.state.notifier = notifier
    app.add_middleware(ErrorHandler)  # added first, so it runs inside the request context
    if config.audit.enabled:
        _install_audit(app, config, store)
    app.add_middleware(RequestContextMiddleware, enabled=not config.log.accesslog.disabled, metrics=metrics)
    if config.response_headers:
        app.add_middleware(ConfiguredHeaders, headers=config.response_headers)
    return app


def _install_audit(app: Starlette, config: Config, store: Store) -> None:
    """The audit log's middleware, between the error handler and the request context (a
    ConfigError when its file cannot be opened)."""
    from oci.digest import Digest
    from registry.audit.middleware import AuditMiddleware
    from registry.audit.sink import AuditSink

    async def blob_size(name: str, digest: Digest) -> int | None:
        return (await store.stat_blob(name, digest)).size

    sink = AuditSink(config.audit)
    app.add_middleware(
        AuditMiddleware, sink=sink, trust_forwarded=config.http.trustforwardedheaders, blob_size=blob_size
    )


class _Base:
    async def ping(self, request: Request, name: str) -> Response:
        """end-1: GET /v2/."""
        return Response(b"{}", media_type="application/json")


async def _purge_loop(store: Store, age: float, interval: float) -> None:
    while True:
        await asyncio.sleep(min(interval, 3600.0) if interval > 0 else 3600.0)
        try:
            purged = await store.purge_uploads(age)
            if purged:
                log.info("purged %d abandoned upload(s)", purged)
        except Exception:
            log.exception("upload purge failed")
