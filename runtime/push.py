"""Pushing an image from the local store: each layer the registry lacks, then the config, then the
manifest under its tag, with Docker's status lines (`Preparing`, `Pushing`, `Pushed`, `Layer already
exists`, `Mounted from NAME`) and `TAG: digest: DIGEST size: N`.

A layer the repository lacks is found in this order, as Docker does it and then some:
1. mounted from another repository of the same registry that the store knows to hold it (any local image
   of that registry whose manifest names the blob: the base image a build started from, typically);
2. uploaded from the store, which keeps the compressed archive of every layer it pulled, loaded or built;
3. failing that (a layer pulled before the store kept archives, or a blob removed by hand), fetched again
   from a registry a local image names it in, verified against its digest, kept, then uploaded.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from oci.client import ClientError, RegistryClient
from oci.reference import InvalidReference, Reference
from runtime import auth_config
from runtime.auth_config import AuthConfigError
from runtime.images import ImageError, ImageStore, LocalImage
from runtime.progress import PullReporter, reporter_for, short

__all__ = ["PushError", "Pushed", "push_image"]

MAX_CONCURRENT_UPLOADS = 5  # dockerd's max-concurrent-uploads default


class PushError(ImageError):
    pass


@dataclass(frozen=True)
class Pushed:
    reference: str
    digest: str
    size: int


def _tags_to_push(store: ImageStore, reference: Reference, all_tags: bool) -> list[tuple[str, LocalImage]]:
    if not all_tags:
        image = store.resolve(str(reference))
        if image is None:
            raise PushError(f"An image does not exist locally with the tag: {reference.familiar()}")
        return [(reference.tag or "latest", image)]
    found = []
    for key in sorted(store.refs()):
        try:
            other = Reference.parse(key)
        except InvalidReference:
            continue
        if (other.registry, other.repository) == (reference.registry, reference.repository) and other.tag:
            image = store.resolve(key)
            if image is not None:
                found.append((other.tag, image))
    if not found:
        raise PushError(f"An image does not exist locally with the tag: {reference.familiar()}")
    return found


@dataclass(frozen=True)
class Origin:
    """A repository of a registry that a local image says holds a blob."""

    registry: str
    repository: str
    endpoint: str


def _origins(store: ImageStore) -> dict[str, list[Origin]]:
    """Blob digest -> the repositories local images name it in, in the order of their references."""
    origins: dict[str, list[Origin]] = {}
    for key, record in sorted(store.refs().items()):
        try:
            other = Reference.parse(key)
            manifest = json.loads(store.get_blob(record["manifest"]))
        except (InvalidReference, OSError, ValueError, KeyError):
            continue
        origin = Origin(other.registry, other.repository, other.endpoint)
        for layer in manifest.get("layers", []):
            found = origins.setdefault(str(layer.get("digest")), [])
            if origin not in found:
                found.append(origin)
    return origins


def _mount_sources(origins: Mapping[str, list[Origin]], registry: str, repository: str) -> dict[str, list[str]]:
    """Blob digest -> other repositories of `registry` that local images say hold it."""
    return {
        digest: [o.repository for o in found if o.registry == registry and o.repository != repository]
        for digest, found in origins.items()
    }


async def push_image(
    store: ImageStore,
    ref: str,
    all_tags: bool = False,
    insecure: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
) -> list[Pushed]:
    """Push `ref` (or, with `all_tags`, every local tag of its repository). Failures are PushErrors."""
    try:
        reference = Reference.parse(ref)
        if all_tags and reference.tag and ref.rpartition("/")[2].count(":"):
            raise PushError("tag can't be used with --all-tags/-a")
        if reference.digest:
            raise PushError("cannot push a digest reference")
        images = _tags_to_push(store, reference, all_tags)
        credentials = auth_config.get_credentials(store.root, reference.registry)
        fetcher_insecure = insecure
        insecure = insecure or reference.registry in auth_config.insecure_registries(store.root)
        reporter = reporter_for(out or sys.stdout, progress)
        reporter.status(f"The push refers to repository [{reference.registry}/{reference.repository}]")
        pushed = []
        try:
            async with RegistryClient(reference.endpoint, credentials, insecure) as client:
                origins = _origins(store)
                sources = _mount_sources(origins, reference.registry, reference.repository)
                fetcher = _Fetcher(store, origins, fetcher_insecure)
                for tag, image in images:
                    pushed.append(await _push_one(client, store, reference, tag, image, sources, fetcher, reporter))
        finally:
            reporter.close()
        return pushed
    except PushError:
        raise
    except (ClientError, AuthConfigError, OSError, ValueError) as exc:
        raise PushError(str(exc)) from exc


async def _push_one(
    client: RegistryClient,
    store: ImageStore,
    reference: Reference,
    tag: str,
    image: LocalImage,
    sources: Mapping[str, list[str]],
    fetcher: _Fetcher,
    reporter: PullReporter,
) -> Pushed:
    repository = reference.repository
    manifest_bytes = store.get_blob(image.manifest_digest)
    manifest = json.loads(manifest_bytes)
    layers: list[dict[str, Any]] = list(manifest.get("layers", []))
    for desc in reversed(layers):
        reporter.layer(str(desc["digest"]), "Preparing", int(desc.get("size", 0)) or None)
    limit = asyncio.Semaphore(MAX_CONCURRENT_UPLOADS)
    try:
        async with asyncio.TaskGroup() as group:
            for desc in reversed(layers):
                group.create_task(_push_blob(client, store, repository, desc, sources, fetcher, reporter, limit))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    config = manifest["config"]
    if not await client.blob_exists(repository, str(config["digest"])):
        location = await client.start_upload(repository)
        with _open(store.blob_path(str(config["digest"]))) as handle:
            await client.upload_blob(repository, location, str(config["digest"]), handle, int(config["size"]))
    media_type = str(manifest.get("mediaType") or "application/vnd.oci.image.manifest.v1+json")
    digest = await client.put_manifest(repository, tag, manifest_bytes, media_type)
    reporter.status(f"{tag}: digest: {digest} size: {len(manifest_bytes)}")
    return Pushed(f"{reference.registry}/{repository}:{tag}", digest, len(manifest_bytes))


async def _push_blob(
    client: RegistryClient,
    store: ImageStore,
    repository: str,
    desc: Mapping[str, Any],
    sources: Mapping[str, list[str]],
    fetcher: _Fetcher,
    reporter: PullReporter,
    limit: asyncio.Semaphore,
) -> None:
    digest = str(desc["digest"])
    size = int(desc.get("size", 0))
    async with limit:
        if await client.blob_exists(repository, digest):
            reporter.layer(digest, "Layer already exists")
            return
        location = None
        for source in sources.get(digest, []):
            mounted, location = await client.mount_blob(repository, digest, source)
            if mounted:
                reporter.layer(digest, f"Mounted from {source}")
                return
        if not store.has_blob(digest):
            await fetcher.fetch(desc, reporter)
        if location is None:
            location = await client.start_upload(repository)
        reporter.layer(digest, "Pushing", size or None)
        with _open(store.blob_path(digest)) as handle:
            await client.upload_blob(
                repository, location, digest, handle, size, progress=lambda n: reporter.advance(digest, n)
            )
        reporter.layer(digest, "Pushed")


class _Fetcher:
    """Brings back a layer archive the store lacks from a registry a local image names it in."""

    def __init__(self, store: ImageStore, origins: Mapping[str, list[Origin]], insecure: bool) -> None:
        self.store = store
        self.origins = origins
        self.insecure = insecure

    async def fetch(self, desc: Mapping[str, Any], reporter: PullReporter) -> None:
        digest = str(desc["digest"])
        size = desc.get("size")
        failures = []
        for origin in self.origins.get(digest, []):
            reporter.layer(digest, f"Fetching from {origin.registry}/{origin.repository}")
            try:
                await self._fetch_from(origin, digest, size if isinstance(size, int) else None)
                return
            except (ClientError, AuthConfigError, OSError) as exc:
                failures.append(f"{origin.registry}/{origin.repository}: {exc}")
        where = "; ".join(failures) or "no local image names a registry that holds it"
        raise PushError(f"layer {short(digest)} is not in the local store and could not be fetched again: {where}")

    async def _fetch_from(self, origin: Origin, digest: str, size: int | None) -> None:
        credentials = auth_config.get_credentials(self.store.root, origin.registry)
        insecure = self.insecure or origin.registry in auth_config.insecure_registries(self.store.root)
        staged = self.store.tempdir()
        try:
            blob = staged / "layer"
            async with RegistryClient(origin.endpoint, credentials, insecure) as client:
                with _open_write(blob) as handle:
                    await client.download_blob(origin.repository, digest, handle, size=size)
            self.store.put_blob_file(blob, digest)
        finally:
            shutil.rmtree(staged, ignore_errors=True)


def _open(path: Path) -> BinaryIO:
    return open(path, "rb")


def _open_write(path: Path) -> BinaryIO:
    return open(path, "wb")
