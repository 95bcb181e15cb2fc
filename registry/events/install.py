"""Build the app's `Notifier` from the config: the app calls `install` once."""

from __future__ import annotations

import logging

from registry.config import Config
from registry.events.config import NotificationsConfig
from registry.events.deliver import DeliveryMetrics
from registry.events.model import Source
from registry.events.notifier import Notifier
from storage_backends import StorageBackend

log = logging.getLogger("dockyard.events")


def install(config: Config, backend: StorageBackend, metrics: DeliveryMetrics | None = None) -> Notifier:
    _, port = config.host_port
    notifications = config.notifications
    read_only = config.storage.maintenance.readonly.enabled
    if read_only and notifications.active:
        # The queues live in storage, which read-only mode leaves untouched.
        log.warning("notifications: storage is read-only, so no events are queued or sent")
        notifications = NotificationsConfig()
    return Notifier(
        notifications,
        backend,
        Source.here(port),
        public_host=config.http.host,
        relative_urls=config.http.relativeurls,
        prefix=config.http.prefix,
        metrics=metrics,
        # A tail runs in another process: with storage in memory it could never see this one's queue.
        follow_tails=config.storage.driver != "inmemory" and not read_only,
    )
