"""The catalog's snapshot is invalidated in one place, the backend boundary: every write below
`repositories/`, by whichever path, moves the count; reads and writes elsewhere do not."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable

import pytest

from oci import mediatypes as mt
from oci.digest import Digest
from registry import paths
from registry.store import Store
from registry.writes import WriteCounter
from storage_backends import StorageBackend, Wrapper, innermost
from storage_backends.memory import MemoryBackend


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _counted(counter: WriteCounter, action: Awaitable[object]) -> int:
    before = counter.writes
    await action
    return counter.writes - before


async def test_writes_below_the_prefix_count_and_nothing_else_does() -> None:
    counter = WriteCounter(MemoryBackend(), "root/repositories")
    assert isinstance(counter, Wrapper) and isinstance(innermost(counter), MemoryBackend)
    assert await _counted(counter, counter.put("root/repositories/a/link", b"x")) == 1
    assert await _counted(counter, counter.put("root/blobs/x/data", b"x")) == 0
    assert await _counted(counter, counter.put("root/repositories-not/x", b"x")) == 0
    assert await _counted(counter, counter.get("root/repositories/a/link")) == 0
    assert await _counted(counter, counter.stat("root/repositories/a/link")) == 0
    assert await _counted(counter, counter.list("root/repositories")) == 0
    assert await _counted(counter, counter.move("root/blobs/x/data", "root/repositories/a/data")) == 1
    assert await _counted(counter, counter.move("root/repositories/a/data", "root/blobs/y/data")) == 1
    writer = await counter.writer("root/repositories/a/upload", append=True)
    await writer.write(b"chunk")
    assert writer.size == 5
    assert await _counted(counter, writer.commit()) == 1
    outside = await counter.writer("root/blobs/z/data")
    await outside.write(b"z")
    assert await _counted(counter, outside.commit()) == 0
    assert await _counted(counter, counter.delete("root/repositories/a")) == 1
    assert await _counted(counter, counter.delete("root")) == 0


class _FailingPuts(MemoryBackend):
    async def put(self, key: str, data: bytes) -> None:
        await super().put(key, data)
        raise OSError("the connection dropped after the write")


async def test_a_failed_write_still_counts() -> None:
    counter = WriteCounter(_FailingPuts(), "r")
    with pytest.raises(OSError):
        await counter.put("r/a", b"x")
    assert counter.writes == 1


def _store_writes(store: Store) -> int:
    backend: StorageBackend = store.backend
    assert isinstance(backend, WriteCounter)
    return backend.writes


async def test_every_store_write_path_moves_the_count() -> None:
    store = Store(MemoryBackend(), delete_enabled=True)
    layer = b"layer"
    layer_digest = f"sha256:{hashlib.sha256(layer).hexdigest()}"
    config = b"{}"
    config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
    steps: list[tuple[str, bool]] = []

    async def step(label: str, action: Awaitable[object]) -> None:
        before = _store_writes(store)
        await action
        steps.append((label, _store_writes(store) > before))

    upload = await store.uploads.start_upload("app")
    await step("append", store.uploads.append_upload("app", upload, _chunks(layer)))
    await step("complete", store.uploads.complete_upload("app", upload, layer_digest, None))
    await step("monolithic", store.uploads.put_blob("app", _chunks(config), config_digest))
    cancelled = await store.uploads.start_upload("app")
    await step("cancel", store.uploads.cancel_upload("app", cancelled))
    await step("mount", store.mount_blob("other", "app", Digest.parse(layer_digest)))
    manifest = (
        f'{{"schemaVersion":2,"mediaType":"{mt.OCI_MANIFEST}",'
        f'"config":{{"mediaType":"{mt.OCI_CONFIG}","digest":"{config_digest}","size":2}},'
        f'"layers":[{{"mediaType":"{mt.OCI_LAYER_GZIP}","digest":"{layer_digest}","size":5}}]}}'
    ).encode()
    await step("put manifest", store.put_manifest("app", "v1", manifest, mt.OCI_MANIFEST))
    await step("delete tag", store.delete_manifest("app", "v1"))
    await step("delete blob", store.delete_blob("other", Digest.parse(layer_digest)))
    await store.uploads.start_upload("app")
    await step("purge", store.purge_uploads(-1.0))
    # A write the store has no helper for is counted too: the count lives below every path.
    await step("raw put", store.backend.put(paths.tag_current_link("app", "raw"), layer_digest.encode()))
    assert [label for label, moved in steps if not moved] == []
