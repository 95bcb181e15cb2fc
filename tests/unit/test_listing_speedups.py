"""The listing speed-ups stay exact: the filesystem's one-hop walk, its cache of big directory
listings (checked against the directory's mtime), and the catalog's snapshot for later pages."""

from __future__ import annotations

import os
import time
from pathlib import Path

from registry.store import Store
from storage_backends.filesystem import FilesystemBackend, _Listings
from storage_backends.memory import MemoryBackend


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_walk_returns_every_directory_it_may_descend(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path)
    for key in ("r/a/_layers/x", "r/a/b/_manifests/y", "r/c/file", "r/_hidden/d/e"):
        await backend.put(key, b"1")
    tree = dict(await backend.walk("r", lambda entry: not entry.startswith("_")))
    assert tree == {"": ["_hidden", "a", "c"], "a": ["_layers", "b"], "a/b": ["_manifests"], "c": ["file"]}
    assert await backend.walk("missing", lambda entry: True) == []


async def test_big_listing_is_reused_only_while_the_directory_is_unchanged(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path)
    directory = tmp_path / "tags"
    directory.mkdir()
    names = [f"t{i:04d}" for i in range(_Listings.MIN_ENTRIES)]
    for name in names:
        (directory / name).mkdir()
    _age(directory, 5)
    assert await backend.list("tags") == names
    assert await backend.list("tags", after="t0100", limit=2) == ["t0101", "t0102"]
    (directory / "t9999").mkdir()  # a write by anyone: the mtime moves on, the listing is read again
    assert (await backend.list("tags"))[-1] == "t9999"
    (directory / "t0000").rmdir()
    assert (await backend.list("tags"))[0] == "t0001"


def test_a_listing_of_a_directory_changed_just_now_is_not_kept(tmp_path: Path) -> None:
    listings = _Listings()
    for i in range(_Listings.MIN_ENTRIES):
        (tmp_path / f"e{i:04d}").mkdir()
    listings.names(str(tmp_path))
    assert str(tmp_path) not in listings._items  # changed within the last second: mtime may not move
    _age(tmp_path, 5)
    listings.names(str(tmp_path))
    assert str(tmp_path) in listings._items


async def test_catalog_pages_see_this_replicas_writes(tmp_path: Path) -> None:
    for backend in (FilesystemBackend(tmp_path), MemoryBackend()):
        store = Store(backend)
        for name in ("a", "c", "e"):
            await store.uploads.start_upload(name)
        assert await store.catalog(n=1) == ["a", "c", "e"][:1]
        await store.uploads.start_upload("d")  # after the first page: the next page must still show it
        assert await store.catalog(last="a") == ["c", "d", "e"]
        assert await store.catalog(last="c", n=1) == ["d"]
