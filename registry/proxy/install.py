"""Wiring the pull-through cache into the app: its handlers wrap the local ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from registry.config import ProxyConfig
from registry.handlers.blobs import BlobHandlers
from registry.handlers.listing import ListingHandlers
from registry.handlers.manifests import ManifestHandlers
from registry.handlers.uploads import UploadHandlers
from registry.proxy.evict import caches
from registry.proxy.fill import Filler
from registry.proxy.handlers import (
    Mirror,
    MirrorBlobHandlers,
    MirrorListingHandlers,
    MirrorManifestHandlers,
    MirrorUploadHandlers,
)
from registry.proxy.manifests import MirroredManifests
from registry.proxy.metrics import ProxyMetrics
from registry.proxy.routing import Routing
from registry.proxy.spools import Spools
from registry.store import Store


def check(config: ProxyConfig) -> None:
    """Refuse a bad `proxy` section (ConfigError) without building anything."""
    Routing(config)
    caches(config)


def install(
    config: ProxyConfig, store: Store, handlers: dict[str, Any], registry: CollectorRegistry, spools: Path | None = None
) -> Mirror | None:
    """Wrap the local handlers in `handlers` with the mirror's; None when no upstream is configured."""
    if not config.remoteurl and not config.upstreams:
        return None
    caches(config)  # a bad maxsize is refused at start
    metrics = ProxyMetrics(registry)
    mirror = Mirror(
        Routing(config),
        store,
        Filler(store.backend, metrics, config.backgroundlimit, Spools(spools)),
        MirroredManifests(store, metrics),
        metrics,
    )
    blobs, manifests, uploads, listing = (handlers[k] for k in ("blobs", "manifests", "uploads", "listing"))
    assert isinstance(blobs, BlobHandlers) and isinstance(manifests, ManifestHandlers)
    assert isinstance(uploads, UploadHandlers) and isinstance(listing, ListingHandlers)
    handlers["blobs"] = MirrorBlobHandlers(mirror, blobs)
    handlers["manifests"] = MirrorManifestHandlers(mirror, manifests)
    handlers["uploads"] = MirrorUploadHandlers(mirror, uploads)
    handlers["listing"] = MirrorListingHandlers(mirror, listing)
    return mirror
