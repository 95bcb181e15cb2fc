"""`dockyard mirror warm REF...`: pre-fill the cache with whole images (every platform of an index,
their configs and layers), for sites that will later pull with no upstream in reach. It works on
the storage directly, as one more replica would, so the server may be running or not."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from oci.descriptor import must_exist
from oci.manifests import parse_manifest
from registry.config import Config, ConfigError
from registry.errors import RegistryError
from registry.proxy.fill import Filler
from registry.proxy.manifests import MirroredManifests
from registry.proxy.metrics import ProxyMetrics
from registry.proxy.routing import Routing, Target
from registry.proxy.spools import Spools, spool_directory
from registry.store import Store
from storage_backends import open_backend

log = logging.getLogger("dockyard.proxy")


@dataclass
class Warmed:
    manifests: int = 0
    blobs: int = 0
    fetched_bytes: int = 0


def split_reference(ref: str) -> tuple[str, str]:
    """`name:tag`, `name@digest` or `name` (meaning `latest`), as the mirror names repositories."""
    if "@" in ref:
        name, _, reference = ref.partition("@")
        return name, reference
    head, _, last = ref.rpartition("/")
    if ":" in last:
        last, _, tag = last.partition(":")
        return f"{head}/{last}" if head else last, tag
    return ref, "latest"


async def warm(config: Config, refs: list[str]) -> Warmed:
    if config.proxy is None:
        raise ConfigError("proxy: no upstream is configured, so there is no cache to warm")
    routing = Routing(config.proxy)
    backend = open_backend(config.storage.driver, config.storage.driver_options)
    store = Store(backend)
    metrics = ProxyMetrics(CollectorRegistry())
    filler = Filler(store.backend, metrics, config.proxy.backgroundlimit, Spools(spool_directory(config)))
    manifests = MirroredManifests(store, metrics)
    done = Warmed()
    try:
        for ref in refs:
            name, reference = split_reference(ref)
            target = routing.prefixed(name) or routing.unprefixed(name, None)
            if target is None:
                raise ConfigError(f"{ref}: no upstream mirrors this name")
            await _warm_manifest(target, reference, store, manifests, filler, done)
    finally:
        await filler.aclose()
        await routing.aclose()
        await backend.close()
    return done


async def _warm_manifest(
    target: Target, reference: str, store: Store, manifests: MirroredManifests, filler: Filler, done: Warmed
) -> None:
    answer = await manifests.get(target, target.local, reference, head_only=False)
    assert answer.manifest is not None
    done.manifests += 1
    parsed = parse_manifest(answer.manifest.body, answer.manifest.media_type)
    for child in parsed.children:
        await _warm_manifest(target, str(child.digest), store, manifests, filler, done)
    for blob in parsed.blobs:
        if not must_exist(blob):
            continue
        try:
            await store.stat_blob(target.local, blob.digest)
            continue
        except RegistryError:
            pass
        fill = filler.fill(target, target.local, blob.digest, keep=True)
        await fill.wait_done()
        done.blobs += 1
        done.fetched_bytes += fill.written
