"""Store behaviour that has no HTTP surface: purging abandoned uploads."""

from __future__ import annotations

import time

from registry import paths
from registry.store import Store
from storage_backends.memory import MemoryBackend


async def test_purge_removes_only_old_uploads() -> None:
    backend = MemoryBackend()
    store = Store(backend)
    old = await store.start_upload("team/app")
    fresh = await store.start_upload("team/app")
    for key, entry in backend.files.items():
        if f"/_uploads/{old}/" in key:
            entry.modified = time.time() - 8 * 24 * 3600
    assert await store.purge_uploads(older_than=7 * 24 * 3600) == 1
    assert not [k for k in backend.files if f"/_uploads/{old}/" in k]
    assert await store.upload_size("team/app", fresh) == 0
    assert paths.upload_data("team/app", fresh) in backend.files
