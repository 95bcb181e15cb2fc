"""The storage contract (storage_backends/base.py), checked against every backend.

Modelled on distribution's driver testsuites: one suite, and a backend joins it with one row in
conftest.OPENERS. Each test deletes what it wrote; the fixture checks that the store is empty.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import anyio
import anyio.lowlevel
import httpx
import pytest

from storage_backends import InvalidPath, PathNotFound, StorageBackend

MiB = 1024 * 1024


def blob(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking bytes (so that a shifted range never matches by chance)."""
    pattern = bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(65521))
    return (pattern * (size // len(pattern) + 1))[:size]


async def read_all(backend: StorageBackend, key: str, offset: int = 0, length: int | None = None, **kw: int) -> bytes:
    return b"".join([chunk async for chunk in backend.reader(key, offset, length, **kw)])


async def append(backend: StorageBackend, key: str, *chunks: bytes) -> int:
    writer = await backend.writer(key, append=True)
    for chunk in chunks:
        await writer.write(chunk)
    size = writer.size
    await writer.commit()
    return size


# --- get / put -------------------------------------------------------------------------------


async def test_put_then_get(backend: StorageBackend) -> None:
    await backend.put("a/b/c", b"hello")
    assert await backend.get("a/b/c") == b"hello"
    await backend.put("a/b/c", b"bye")
    assert await backend.get("a/b/c") == b"bye"
    await backend.put("a/empty", b"")
    assert await backend.get("a/empty") == b""
    every_byte = bytes(range(256)) * 3
    await backend.put("a/bin", every_byte)
    assert await backend.get("a/bin") == every_byte
    await backend.delete("a")


async def test_missing_keys_raise_path_not_found(backend: StorageBackend) -> None:
    with pytest.raises(PathNotFound):
        await backend.get("no/such/key")
    with pytest.raises(PathNotFound):
        await backend.stat("no/such/key")
    with pytest.raises(PathNotFound):
        await read_all(backend, "no/such/key")
    with pytest.raises(PathNotFound):
        await read_all(backend, "no/such/key", 0, 0)
    with pytest.raises(PathNotFound):
        await backend.move("no/such/key", "elsewhere")
    with pytest.raises(PathNotFound):
        await backend.stat("elsewhere")


async def test_a_directory_is_not_a_file(backend: StorageBackend) -> None:
    await backend.put("dir/file", b"x")
    with pytest.raises(PathNotFound):
        await backend.get("dir")
    with pytest.raises(PathNotFound):
        await read_all(backend, "dir")
    with pytest.raises(PathNotFound):
        await backend.get("dir/file/below")
    await backend.delete("dir")


BAD_KEYS = ["", "/a", "a/", "a//b", "../a", "a/../b", "./a", ".", "..", "a b", "a\x00b", "a\\b", "é", "a/~b", "a?b"]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_invalid_keys_are_rejected(backend: StorageBackend, key: str) -> None:
    with pytest.raises(InvalidPath):
        await backend.put(key, b"x")
    with pytest.raises(InvalidPath):
        await backend.get(key)
    with pytest.raises(InvalidPath):
        await backend.stat(key)
    with pytest.raises(InvalidPath):
        await read_all(backend, key)
    with pytest.raises(InvalidPath):
        await backend.writer(key)
    with pytest.raises(InvalidPath):
        await backend.delete(key)
    with pytest.raises(InvalidPath):
        await backend.move(key, "ok")
    with pytest.raises(InvalidPath):
        await backend.move("ok", key)
    if key:  # "" lists the root
        with pytest.raises(InvalidPath):
            await backend.list(key)


# --- atomic writers --------------------------------------------------------------------------


async def test_writer_publishes_only_on_commit(backend: StorageBackend) -> None:
    writer = await backend.writer("w/new")
    await writer.write(b"abc")
    await writer.write(b"def")
    assert writer.size == 6
    with pytest.raises(PathNotFound):
        await backend.stat("w/new")
    await writer.commit()
    assert await backend.get("w/new") == b"abcdef"

    writer = await backend.writer("w/new")
    await writer.write(blob(3 * MiB))
    await writer.write(blob(3 * MiB, seed=1))
    assert await backend.get("w/new") == b"abcdef"
    await writer.commit()
    assert await backend.get("w/new") == blob(3 * MiB) + blob(3 * MiB, seed=1)
    await backend.delete("w")


@pytest.mark.parametrize("size", [0, 10, 7 * MiB])
async def test_cancelled_writer_leaves_nothing(backend: StorageBackend, size: int) -> None:
    writer = await backend.writer("c/new")
    await writer.write(blob(size))
    await writer.cancel()
    with pytest.raises(PathNotFound):
        await backend.stat("c/new")
    assert await backend.list("") == []


@pytest.mark.parametrize("size", [0, 10, 7 * MiB])
async def test_cancelled_writer_keeps_previous_content(backend: StorageBackend, size: int) -> None:
    await backend.put("c/old", b"previous")
    writer = await backend.writer("c/old")
    await writer.write(blob(size))
    await writer.cancel()
    assert await backend.get("c/old") == b"previous"
    await backend.delete("c")


@pytest.mark.parametrize("size", [0, 10, 7 * MiB])
async def test_cancelled_append_keeps_previous_content(backend: StorageBackend, size: int) -> None:
    await append(backend, "c/up", b"first-")
    writer = await backend.writer("c/up", append=True)
    await writer.write(blob(size))
    await writer.cancel()
    assert await backend.get("c/up") == b"first-"
    assert (await backend.stat("c/up")).size == 6
    await backend.delete("c")


async def test_cancelled_append_to_a_missing_key_leaves_nothing(backend: StorageBackend) -> None:
    writer = await backend.writer("c/up", append=True)
    await writer.write(b"data")
    await writer.cancel()
    with pytest.raises(PathNotFound):
        await backend.stat("c/up")


# --- append writers (resumable uploads) ------------------------------------------------------


async def test_append_grows_and_counts_size(backend: StorageBackend) -> None:
    assert await append(backend, "u/data", b"") == 0
    assert (await backend.stat("u/data")).size == 0
    assert await append(backend, "u/data", b"ab", b"c") == 3
    assert await append(backend, "u/data", b"d") == 4
    writer = await backend.writer("u/data", append=True)
    assert writer.size == 4
    await writer.write(b"efg")
    assert writer.size == 7
    await writer.commit()
    assert await backend.get("u/data") == b"abcdefg"
    assert (await backend.stat("u/data")).size == 7
    await backend.delete("u")


async def test_append_continues_an_existing_put(backend: StorageBackend) -> None:
    await backend.put("u/data", b"start:")
    assert await append(backend, "u/data", b"more") == 10
    assert await backend.get("u/data") == b"start:more"
    await backend.delete("u")


# Sessions of mixed sizes around S3's 5 MiB minimum part: tiny PATCHes, one big streamed PATCH, and
# a streamed PATCH written in odd-sized pieces.
SESSIONS = [[1], [3 * MiB], [3 * MiB], [7 * MiB + 3], [100], [2 * MiB, 2 * MiB, 2 * MiB, 5], [12 * MiB + 1], [7]]


async def test_append_sessions_of_any_size(backend: StorageBackend, replica: Callable[[], StorageBackend]) -> None:
    """Uploads grow over many requests, each possibly on another replica."""
    other = replica()
    expected = bytearray()
    for number, session in enumerate(SESSIONS):
        target = backend if number % 2 == 0 else other
        chunks = [blob(size, seed=number * 10 + i) for i, size in enumerate(session)]
        size = await append(target, "u/data", *chunks)
        for chunk in chunks:
            expected += chunk
        assert size == len(expected)
        assert (await backend.stat("u/data")).size == len(expected)
    assert await read_all(other, "u/data") == expected
    # Ranges across the boundaries between sessions.
    for offset, length in [(0, 1), (1, 3 * MiB), (3 * MiB, 3 * MiB + 5), (len(expected) - 10, None), (13 * MiB, MiB)]:
        end = len(expected) if length is None else offset + length
        assert await read_all(backend, "u/data", offset, length) == expected[offset:end]
    await backend.move("u/data", "blobs/final")
    assert await read_all(other, "blobs/final") == expected
    assert (await backend.stat("blobs/final")).size == len(expected)
    with pytest.raises(PathNotFound):
        await backend.stat("u/data")
    await backend.delete("u")
    await backend.delete("blobs")
    if other is not backend:
        await other.close()


async def test_append_then_overwrite(backend: StorageBackend) -> None:
    await append(backend, "u/data", blob(6 * MiB), b"tail")
    await backend.put("u/data", b"replaced")
    assert await backend.get("u/data") == b"replaced"
    assert (await backend.stat("u/data")).size == 8
    await append(backend, "u/data", b"+more")
    assert await backend.get("u/data") == b"replaced+more"
    await backend.delete("u")


# --- readers ---------------------------------------------------------------------------------

READ_SIZE = 3 * 65536 + 123


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, None), (0, 0), (0, 1), (1, None), (65535, 2), (65536, 65536), (100, READ_SIZE - 100), (READ_SIZE - 1, None),
     (READ_SIZE - 1, 1), (READ_SIZE, None), (READ_SIZE, 0), (READ_SIZE + 5, None), (10, READ_SIZE)],
)  # fmt: skip
async def test_reader_ranges_are_exact(backend: StorageBackend, offset: int, length: int | None) -> None:
    data = blob(READ_SIZE)
    await backend.put("r/obj", data)
    end = len(data) if length is None else min(len(data), offset + length)
    chunks = [chunk async for chunk in backend.reader("r/obj", offset, length, chunk_size=65536)]
    assert b"".join(chunks) == data[offset:end]
    assert all(0 < len(chunk) <= 65536 for chunk in chunks)
    await backend.delete("r")


async def test_reader_streams_in_chunks(backend: StorageBackend) -> None:
    data = blob(5 * MiB + 7)
    await backend.put("r/big", data)
    sizes = [len(chunk) async for chunk in backend.reader("r/big", chunk_size=MiB)]
    assert sum(sizes) == len(data)
    assert len(sizes) >= 6 and max(sizes) <= MiB
    await backend.delete("r")


async def test_reader_of_an_appended_key(backend: StorageBackend) -> None:
    parts = [blob(6 * MiB, 1), blob(100, 2), blob(5 * MiB, 3)]
    for part in parts:
        await append(backend, "r/up", part)
    data = b"".join(parts)
    for offset, length in [(0, None), (6 * MiB - 1, 2), (6 * MiB + 50, 100), (len(data) - 1, 5), (len(data), None)]:
        end = len(data) if length is None else min(len(data), offset + length)
        chunks = [chunk async for chunk in backend.reader("r/up", offset, length, chunk_size=MiB)]
        assert b"".join(chunks) == data[offset:end]
        assert all(len(chunk) <= MiB for chunk in chunks)
    await backend.delete("r")


# --- stat --------------------------------------------------------------------------------------


async def test_stat(backend: StorageBackend) -> None:
    before = time.time()
    await backend.put("s/dir/file", b"12345")
    info = await backend.stat("s/dir/file")
    assert (info.key, info.size, info.is_dir) == ("s/dir/file", 5, False)
    assert before - 5 < info.modified < time.time() + 5
    for prefix in ("s", "s/dir"):
        info = await backend.stat(prefix)
        assert info.is_dir and info.key == prefix
    with pytest.raises(PathNotFound):
        await backend.stat("s/di")
    await backend.delete("s")


# --- list --------------------------------------------------------------------------------------

LAYOUT = ["l/a", "l/a-b", "l/a.c", "l/a0", "l/b/x", "l/b/y/z", "l/b-c/x", "l/c", "l/v1.0/x", "l/v1.0-rc/x", "l/v1/x"]
CHILDREN = ["a", "a-b", "a.c", "a0", "b", "b-c", "c", "v1", "v1.0", "v1.0-rc"]


async def test_list_children_sorted(backend: StorageBackend) -> None:
    for key in LAYOUT:
        await backend.put(key, b"")
    assert await backend.list("l") == CHILDREN
    assert await backend.list("") == ["l"]
    assert await backend.list("l/b") == ["x", "y"]
    assert await backend.list("l/b/y") == ["z"]
    assert await backend.list("l/missing") == []
    assert await backend.list("l/a") == []  # a file has no children
    assert await backend.list("nothing/here") == []
    await backend.delete("l")


async def test_list_pages(backend: StorageBackend) -> None:
    for key in LAYOUT:
        await backend.put(key, b"")
    assert await backend.list("l", after="a") == CHILDREN[1:]
    assert await backend.list("l", after="b") == CHILDREN[5:]
    assert await backend.list("l", after="a-a") == CHILDREN[1:]  # `after` need not exist
    assert await backend.list("l", after="v1.0-rc") == []
    assert await backend.list("l", limit=0) == []
    for limit in (1, 2, 3, 4):
        pages: list[str] = []
        after: str | None = None
        while True:
            page = await backend.list("l", after=after, limit=limit)
            assert len(page) <= limit
            if not page:
                break
            pages += page
            after = page[-1]
        assert pages == CHILDREN
    await backend.delete("l")


async def test_list_many(backend: StorageBackend) -> None:
    names = [f"n{i:04d}" for i in range(1100)]  # more than one S3 list page
    async with anyio.create_task_group() as group:
        limiter = anyio.Semaphore(32)

        async def put(name: str) -> None:
            async with limiter:
                await backend.put(f"m/{name}/link", b"")

        for name in names:
            group.start_soon(put, name)
    assert await backend.list("m") == names
    assert await backend.list("m", after="n0999", limit=2) == ["n1000", "n1001"]
    await backend.delete("m")
    assert await backend.list("m") == []


# --- move ----------------------------------------------------------------------------------------


async def test_move(backend: StorageBackend) -> None:
    await backend.put("mv/src", b"content")
    await backend.move("mv/src", "mv/deep/dst")
    assert await backend.get("mv/deep/dst") == b"content"
    with pytest.raises(PathNotFound):
        await backend.stat("mv/src")
    await backend.put("mv/other", b"new")
    await backend.move("mv/other", "mv/deep/dst")  # replaces
    assert await backend.get("mv/deep/dst") == b"new"
    await backend.move("mv/deep/dst", "mv/deep/dst")  # onto itself: nothing changes
    assert await backend.get("mv/deep/dst") == b"new"
    assert await backend.list("mv") == ["deep"]
    await backend.delete("mv")


async def test_move_large(backend: StorageBackend) -> None:
    data = blob(11 * MiB + 1)
    writer = await backend.writer("mv/big")
    for start in range(0, len(data), MiB):
        await writer.write(data[start : start + MiB])
    await writer.commit()
    await backend.move("mv/big", "mv/moved")
    assert await read_all(backend, "mv/moved") == data
    await backend.delete("mv")


# --- delete ----------------------------------------------------------------------------------


async def test_delete_is_recursive_and_idempotent(backend: StorageBackend) -> None:
    for key in ["d/a/1", "d/a/2/3", "d/ab", "d/a-b"]:
        await backend.put(key, b"x")
    await append(backend, "d/a/up", blob(6 * MiB), b"x")
    writer = await backend.writer("d/a/abandoned", append=True)
    await writer.write(blob(6 * MiB))  # never committed nor cancelled, like a crashed request
    await backend.delete("d/a")
    assert await backend.list("d") == ["a-b", "ab"]
    with pytest.raises(PathNotFound):
        await backend.stat("d/a")
    await backend.delete("d/a")
    await backend.delete("d/a-b")
    await backend.delete("d/a-b")
    await backend.delete("never/existed")
    assert await backend.list("d") == ["ab"]
    await backend.delete("d")


# --- concurrency ------------------------------------------------------------------------------


async def test_concurrent_writers_of_one_key(backend: StorageBackend) -> None:
    versions = [blob(6 * MiB + i, seed=i) for i in range(4)]

    async def write(data: bytes) -> None:
        writer = await backend.writer("cc/key")
        for start in range(0, len(data), 512 * 1024):
            await writer.write(data[start : start + 512 * 1024])
            await anyio.lowlevel.checkpoint()
        await writer.commit()

    async with anyio.create_task_group() as group:
        for data in versions:
            group.start_soon(write, data)
    assert await read_all(backend, "cc/key") in versions
    await backend.delete("cc")


async def test_readers_never_see_a_mix(backend: StorageBackend) -> None:
    versions = [os.urandom(256 * 1024) for _ in range(3)]
    await backend.put("cc/key", versions[0])
    seen: list[bytes] = []

    async def read() -> None:
        for _ in range(10):
            seen.append(await read_all(backend, "cc/key", chunk_size=65536))

    async def put() -> None:
        for i in range(10):
            await backend.put("cc/key", versions[i % 3])

    async with anyio.create_task_group() as group:
        group.start_soon(read)
        group.start_soon(read)
        group.start_soon(put)
    assert all(data in versions for data in seen)
    await backend.delete("cc")


# --- redirects -----------------------------------------------------------------------------------


async def test_redirect_url(backend: StorageBackend) -> None:
    data = blob(100_000)
    await backend.put("rd/blob", data)
    url = await backend.redirect_url("rd/blob")
    if url is not None:  # optional: backends without one make the registry stream the bytes itself
        async with httpx.AsyncClient() as client:
            whole = await client.get(url)
            assert whole.status_code == 200 and whole.content == data
            part = await client.get(url, headers={"Range": "bytes=10-99"})
            assert part.status_code == 206 and part.content == data[10:100]
    await backend.delete("rd")
