"""Wire the configured policies into the store: the app calls `install` once."""

from __future__ import annotations

from registry.config import Config
from registry.metrics import Metrics
from registry.policies.immutable import ImmutableTags
from registry.policies.pulls import PullRecorder
from registry.policies.quota import Quotas
from registry.store import Store


def install(config: Config, store: Store, metrics: Metrics | None = None) -> PullRecorder | None:
    """Set the store's governance hooks; returns the pull recorder to flush, if retention needs one."""
    policies = config.policies
    if config.quotas.limits:
        quotas = Quotas(config.quotas, store.backend, metrics.observe_quota if metrics is not None else None)
        store.uploads.quota = quotas
        if metrics is not None:
            metrics.before_scrape.append(quotas.current)
    if any(p.immutabletags for p in policies.repositories):
        store.immutable = ImmutableTags(policies)
    if any(p.retention is not None and p.retention.keepwithin for p in policies.repositories):
        store.pulls = PullRecorder(store.backend)
        return store.pulls
    return None
