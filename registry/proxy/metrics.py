"""The cache's counters, per upstream, in the app's Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.hits = Counter(
            "dockyard_proxy_hits", "Mirrored pulls served from the cache", ["upstream", "kind"], registry=r
        )
        self.misses = Counter(
            "dockyard_proxy_misses", "Mirrored pulls that had to go to the upstream", ["upstream", "kind"], registry=r
        )
        self.upstream_bytes = Counter(
            "dockyard_proxy_upstream_bytes", "Bytes downloaded from the upstream", ["upstream"], registry=r
        )
        self.served_bytes = Counter(
            "dockyard_proxy_served_bytes", "Bytes of mirrored content served from the cache", ["upstream"], registry=r
        )
        self.stale = Counter(
            "dockyard_proxy_stale_serves",
            "Cached tags served without revalidation because the upstream failed",
            ["upstream"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "dockyard_proxy_upstream_errors",
            "Upstream requests that failed, by reason",
            ["upstream", "reason"],
            registry=r,
        )
        self.coalesced = Counter(
            "dockyard_proxy_coalesced", "Blob misses that joined a download already running", ["upstream"], registry=r
        )
