"""Pulling an image into the local store: resolve the reference, pick the platform, fetch and verify the
manifest and config, then download and unpack each missing layer (three at a time, as Docker does),
checking every digest: manifest, config, compressed layer, and the uncompressed diff id. The compressed
layer is kept in the store's blobs beside the unpacked one, so `dockyard push` can upload it anywhere
(containerd's content store does the same; `rmi` and `image prune` remove it with the image)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TextIO, TypeVar

import anyio.to_thread

from oci import mediatypes as mt
from oci.client import ClientError, DigestMismatch, RegistryClient
from oci.platform import Platform, select_manifest
from oci.reference import Reference
from runtime import auth_config
from runtime.auth_config import AuthConfigError
from runtime.images import ImageError, ImageStore, LocalImage
from runtime.layers import LayerError, UnpackResult, unpack
from runtime.progress import PullReporter, reporter_for, short

_T = TypeVar("_T")

MAX_CONCURRENT_DOWNLOADS = 3


class PullError(ImageError):
    pass


async def pull_image(
    store: ImageStore,
    ref: str,
    platform: str | None = None,
    insecure: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
) -> LocalImage:
    """Pull `ref` into `store`. Every failure is a `PullError` (an `ImageError`) carrying a one-line reason."""
    try:
        return await _pull_image(store, ref, platform, insecure, progress, out)
    except PullError:
        raise
    except (ClientError, LayerError, AuthConfigError, OSError, ValueError) as exc:
        # ValueError covers malformed references, platforms and digests, and JSON that is not a manifest.
        raise PullError(str(exc)) from exc
    except (KeyError, TypeError) as exc:
        raise PullError(f"{ref}: malformed manifest or image config ({exc!r})") from exc


async def _pull_image(
    store: ImageStore,
    ref: str,
    platform: str | None,
    insecure: bool,
    progress: bool,
    out: TextIO | None,
) -> LocalImage:
    reference = Reference.parse(ref)
    wanted = Platform.parse(platform) if platform else Platform.host()
    credentials = auth_config.get_credentials(store.root, reference.registry)
    insecure = insecure or reference.registry in auth_config.insecure_registries(store.root)
    previous = store.refs().get(str(reference), {}).get("manifest")
    if reference.digest is not None and previous is None:
        # NAME@DIGEST of an image already here under a tag: up to date, and no second (<none>) entry.
        present = store.resolve(str(reference))
        previous = present.manifest_digest if present is not None else None
    reporter = reporter_for(out or sys.stdout, progress)
    store.ensure_dirs()
    try:
        with store.pulling():
            async with RegistryClient(reference.endpoint, credentials, insecure) as client:
                reporter.status(f"{reference.tag or reference.digest}: Pulling from {reference.repository}")
                manifest_digest, index_digest = await _pull(
                    client, store, reference, wanted, platform is not None, reporter
                )
    finally:
        reporter.close()
    reporter.status(f"Digest: {index_digest or manifest_digest}")
    if previous == manifest_digest:
        reporter.status(f"Status: Image is up to date for {reference}")
    else:
        reporter.status(f"Status: Downloaded newer image for {reference}")
    return store.load(manifest_digest, str(reference))


async def _pull(
    client: RegistryClient,
    store: ImageStore,
    reference: Reference,
    wanted: Platform,
    explicit_platform: bool,
    reporter: PullReporter,
) -> tuple[str, str | None]:
    repository = reference.repository
    top = await client.get_manifest(repository, reference.reference)
    index_digest = None
    manifest = top
    if top.media_type in mt.INDEXES:
        index = _json(top.data, "index")
        try:
            entry = select_manifest(index.get("manifests", []), wanted)
        except LookupError as exc:
            raise PullError(f"{reference}: {exc}") from None
        index_digest = top.digest
        manifest = await client.get_manifest(repository, str(entry["digest"]))
        if manifest.digest != entry["digest"]:
            raise DigestMismatch(f"manifest {manifest.digest} is not the {entry['digest']} the index names")
    if manifest.media_type not in mt.IMAGE_MANIFESTS:
        raise PullError(f"{reference}: unsupported manifest type {manifest.media_type!r}")
    doc = _json(manifest.data, "manifest")
    config_desc, layers = doc.get("config"), doc.get("layers")
    if not isinstance(config_desc, Mapping) or not isinstance(layers, list):
        raise PullError(f"{reference}: manifest has no config or layers")

    config_bytes = await client.get_blob(repository, str(config_desc["digest"]))
    if "size" in config_desc and len(config_bytes) != config_desc["size"]:
        raise DigestMismatch(f"config is {len(config_bytes)} bytes, its descriptor says {config_desc['size']}")
    config = _json(config_bytes, "image config")
    if explicit_platform and index_digest is None and not wanted.matches(Platform.of(config)):
        raise PullError(f"{reference} is for {Platform.of(config)}, which does not match the requested {wanted}")
    diff_ids = config.get("rootfs", {}).get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise PullError(f"{reference}: config lists {len(diff_ids or [])} diff ids for {len(layers)} layers")

    unique: dict[str, Mapping[str, Any]] = {}
    for desc, diff_id in zip(layers, diff_ids, strict=True):
        unique.setdefault(str(diff_id), desc)
    for diff_id, desc in unique.items():
        total = desc.get("size")
        status = "Already exists" if store.has_layer(diff_id) else "Pulling fs layer"
        reporter.layer(str(desc["digest"]), status, total if isinstance(total, int) else None)
    limit = asyncio.Semaphore(MAX_CONCURRENT_DOWNLOADS)
    try:
        async with asyncio.TaskGroup() as group:
            for diff_id, desc in unique.items():
                if not store.has_layer(diff_id):
                    group.create_task(_fetch_layer(client, store, repository, desc, diff_id, reporter, limit))
    except ExceptionGroup as failed:
        # The first failure is the story; the others are its siblings being cancelled or failing alike.
        raise failed.exceptions[0] from None

    store.put_blob(config_bytes, str(config_desc["digest"]))
    store.put_blob(manifest.data, manifest.digest)
    if index_digest is not None:
        store.put_blob(top.data, index_digest)
    if reference.digest is None or store.resolve(str(reference)) is None:
        store.tag(str(reference), manifest.digest, index_digest)
    return manifest.digest, index_digest


async def _fetch_layer(
    client: RegistryClient,
    store: ImageStore,
    repository: str,
    desc: Mapping[str, Any],
    diff_id: str,
    reporter: PullReporter,
    limit: asyncio.Semaphore,
) -> None:
    digest = str(desc["digest"])
    size = desc.get("size")
    async with limit:
        staged = store.tempdir()
        try:
            blob = staged / "layer.tar"
            reporter.layer(digest, "Downloading", size if isinstance(size, int) else None)
            with _open_write(blob) as handle:
                await client.download_blob(
                    repository,
                    digest,
                    handle,
                    size=size if isinstance(size, int) else None,
                    progress=lambda n: reporter.advance(digest, n),
                )
            reporter.layer(digest, "Download complete")
            reporter.layer(digest, "Extracting")
            (staged / "diff").mkdir()
            result = await _finish_even_if_cancelled(anyio.to_thread.run_sync(_unpack_file, blob, staged / "diff"))
            if result.diff_id != diff_id:
                raise DigestMismatch(f"layer {digest} unpacks to {result.diff_id}, but the image config says {diff_id}")
            store.put_blob_file(blob, digest)
            store.commit_layer(staged, diff_id, result.size)
            if result.skipped_devices:
                reporter.status(
                    f"{short(digest)}: skipped {result.skipped_devices} device node"
                    f"{'s' if result.skipped_devices != 1 else ''} (a container's /dev is its own)"
                )
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    reporter.layer(digest, "Pull complete")


async def _finish_even_if_cancelled(work: Awaitable[_T]) -> _T:
    """Await `work`; if this task is cancelled meanwhile (a sibling layer failed), let it finish
    first: an unpacking thread still writing would otherwise refill the directory being removed."""
    future = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise


def _open_write(path: Path) -> BinaryIO:
    return open(path, "wb")


def _unpack_file(blob: Path, dest: Path) -> UnpackResult:
    with open(blob, "rb") as handle:
        return unpack(handle, dest)


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError:
        raise ClientError(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ClientError(f"{what} is not a JSON object")
    return doc
