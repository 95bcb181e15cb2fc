"""Counting this process's writes below a prefix, at the backend boundary, so that no write path can
forget to: the catalog's snapshot of the repository list holds only while the count is unchanged."""

from __future__ import annotations

from storage_backends import BlobWriter, StorageBackend


class _CountedWriter:
    def __init__(self, inner: BlobWriter, counter: WriteCounter) -> None:
        self._inner = inner
        self._counter = counter
        self.write = inner.write
        self.cancel = inner.cancel

    @property
    def size(self) -> int:
        return self._inner.size

    async def commit(self) -> None:
        try:
            await self._inner.commit()
        finally:
            self._counter.writes += 1


class WriteCounter:
    """A `StorageBackend` (and a `Wrapper`) that passes every call to `inner` and counts, in `writes`,
    the puts, moves, deletes and writer commits that touch a key below `prefix`. A write counts even
    when it fails: it may have been half done. Reads are the inner backend's own bound methods, so
    they cost nothing extra."""

    def __init__(self, inner: StorageBackend, prefix: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.writes = 0
        self._prefix = prefix.rstrip("/") + "/"
        self.get = inner.get
        self.reader = inner.reader
        self.stat = inner.stat
        self.list = inner.list
        self.redirect_url = inner.redirect_url
        self.close = inner.close

    def _below(self, key: str) -> bool:
        return key.startswith(self._prefix)

    async def put(self, key: str, data: bytes) -> None:
        try:
            await self.inner.put(key, data)
        finally:
            if self._below(key):
                self.writes += 1

    async def writer(self, key: str, append: bool = False) -> BlobWriter:
        writer = await self.inner.writer(key, append)
        return _CountedWriter(writer, self) if self._below(key) else writer

    async def move(self, src: str, dst: str) -> None:
        try:
            await self.inner.move(src, dst)
        finally:
            if self._below(src) or self._below(dst):
                self.writes += 1

    async def delete(self, key: str) -> None:
        try:
            await self.inner.delete(key)
        finally:
            if self._below(key):
                self.writes += 1
