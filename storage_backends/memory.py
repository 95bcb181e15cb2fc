"""In-memory backend for unit and API tests. Not for production: nothing survives a restart."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from storage_backends.base import READ_CHUNK, FileInfo, check_key
from storage_backends.errors import PathNotFound
from storage_backends.options import MemoryOptions


@dataclass
class _Entry:
    data: bytes
    modified: float


class _MemWriter:
    def __init__(self, backend: MemoryBackend, key: str, append: bool) -> None:
        self._backend = backend
        self._key = key
        entry = backend.files.get(key)
        self._base = entry.data if (append and entry) else b""
        self._parts: list[bytes] = []
        self._size = len(self._base)

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        self._parts.append(bytes(data))
        self._size += len(data)

    async def commit(self) -> None:
        self._backend.files[self._key] = _Entry(self._base + b"".join(self._parts), time.time())

    async def cancel(self) -> None:
        self._parts = []


@dataclass
class MemoryBackend:
    files: dict[str, _Entry] = field(default_factory=dict)
    name: str = "inmemory"

    @classmethod
    def from_config(cls, options: MemoryOptions) -> MemoryBackend:
        return cls()

    def _entry(self, key: str) -> _Entry:
        try:
            return self.files[check_key(key)]
        except KeyError:
            raise PathNotFound(key) from None

    async def get(self, key: str) -> bytes:
        return self._entry(key).data

    async def put(self, key: str, data: bytes) -> None:
        self.files[check_key(key)] = _Entry(bytes(data), time.time())

    async def reader(
        self, key: str, offset: int = 0, length: int | None = None, chunk_size: int = READ_CHUNK
    ) -> AsyncIterator[bytes]:
        data = self._entry(key).data
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, chunk_size):
            yield data[start : min(start + chunk_size, end)]

    async def writer(self, key: str, append: bool = False) -> _MemWriter:
        return _MemWriter(self, check_key(key), append)

    async def stat(self, key: str) -> FileInfo:
        check_key(key)
        if key in self.files:
            entry = self.files[key]
            return FileInfo(key=key, size=len(entry.data), modified=entry.modified)
        prefix = key + "/"
        times = [e.modified for k, e in self.files.items() if k.startswith(prefix)]
        if not times:
            raise PathNotFound(key)
        return FileInfo(key=key, size=0, modified=max(times), is_dir=True)

    async def list(self, prefix: str, after: str | None = None, limit: int | None = None) -> list[str]:
        start = check_key(prefix) + "/" if prefix else ""
        names = sorted({k[len(start) :].split("/", 1)[0] for k in self.files if k.startswith(start)})
        if after is not None:
            names = [n for n in names if n > after]
        return names if limit is None else names[:limit]

    async def move(self, src: str, dst: str) -> None:
        check_key(dst)
        entry = self._entry(src)
        del self.files[src]
        self.files[dst] = entry

    async def delete(self, key: str) -> None:
        check_key(key)
        prefix = key + "/"
        for k in [k for k in self.files if k == key or k.startswith(prefix)]:
            del self.files[k]

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        return None

    async def close(self) -> None:
        return None
