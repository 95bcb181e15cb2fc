"""Store behaviour that has no HTTP surface: purging abandoned uploads."""

from __future__ import annotations

import time

from registry import paths
from registry.store import Store
from storage_backends.memory import MemoryBackend


async def test_purge_removes_only_old_uploads() -> None:
    backend = MemoryBackend()
    store = Store(backend)
    old = await store.uploads.start_upload("team/app")
    fresh = await store.uploads.start_upload("team/app")
    for key, entry in backend.files.items():
        if f"/_uploads/{old}/" in key:
            entry.modified = time.time() - 8 * 24 * 3600
    assert await store.purge_uploads(older_than=7 * 24 * 3600) == 1
    assert not [k for k in backend.files if f"/_uploads/{old}/" in k]
    assert await store.uploads.upload_size("team/app", fresh) == 0
    assert paths.upload_data("team/app", fresh) in backend.files


class _CountingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.data_reads = 0

    def reader(self, key: str, offset: int = 0, length: int | None = None, chunk_size: int = 1 << 20):  # type: ignore[no-untyped-def,override]
        if key.endswith("/data") and "/_uploads/" in key:
            self.data_reads += 1
        return super().reader(key, offset, length, chunk_size)


async def _chunks(*parts: bytes):  # type: ignore[no-untyped-def]
    for part in parts:
        yield part


async def test_completion_on_another_process_needs_no_reread() -> None:
    """Docker's flow (POST, one streamed PATCH, empty PUT) spread over two workers or replicas."""
    import hashlib

    backend = _CountingBackend()
    first, second, third = Store(backend), Store(backend), Store(backend)
    upload_id = await first.uploads.start_upload("app")
    await second.uploads.append_upload("app", upload_id, _chunks(b"layer ", b"bytes"))
    digest = await third.uploads.complete_upload(
        "app", upload_id, "sha256:" + hashlib.sha256(b"layer bytes").hexdigest(), None
    )
    assert str(digest).endswith(hashlib.sha256(b"layer bytes").hexdigest())
    assert backend.data_reads == 0


async def test_chunks_alternating_between_processes_are_verified_by_rereading() -> None:
    import hashlib

    from registry.errors import RegistryError

    backend = _CountingBackend()
    a, b = Store(backend), Store(backend)
    upload_id = await a.uploads.start_upload("app")
    await a.uploads.append_upload("app", upload_id, _chunks(b"one-"), start=0)
    await b.uploads.append_upload("app", upload_id, _chunks(b"two-"), start=4)
    await a.uploads.append_upload("app", upload_id, _chunks(b"three"), start=8)
    wrong = "sha256:" + hashlib.sha256(b"one-two-").hexdigest()
    try:
        await b.uploads.complete_upload("app", upload_id, wrong, None)
        raise AssertionError("a wrong digest was accepted")
    except RegistryError as exc:
        assert exc.code.name == "DIGEST_INVALID"
    right = "sha256:" + hashlib.sha256(b"one-two-three").hexdigest()
    assert str(await b.uploads.complete_upload("app", upload_id, right, None)) == right
    assert backend.data_reads >= 1
