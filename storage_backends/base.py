"""The storage interface: a small, async, path-keyed blob store that knows nothing about OCI.

Keys are `/`-separated relative paths made of the characters in `KEY_RE`. A key names either a
file or, implicitly, a directory (a prefix of other keys). Every backend passes the contract suite
in `tests/contract/`.

A backend may also offer optional features, each a protocol of its own below (`WalksTree`,
`LocalFiles`); callers test for them with `isinstance` on `innermost(backend)`, and the contract
suite checks each backend that declares one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

KEY_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")

# Reads stream in blocks this large: big enough to keep per-chunk overhead negligible.
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileInfo:
    key: str
    size: int
    modified: float  # seconds since the epoch
    is_dir: bool = False


class BlobWriter(Protocol):
    """An in-progress write. A new key's bytes become visible only after `commit()`.

    With `append=True` the writer continues the bytes already written (and committed) at
    the key, which is how resumable uploads grow; a backend may show appended bytes before
    `commit()` (the filesystem appends in place), and `cancel()` takes them back. `size` counts
    everything at the key including what was there before.
    """

    @property
    def size(self) -> int: ...

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None:
        """Make the written bytes durable and visible. The writer is closed afterwards."""

    async def cancel(self) -> None:
        """Discard the bytes written by this writer (not the ones already there before)."""


class StorageBackend(Protocol):
    """Contract:

    - `get`, `reader`, `stat`, `move` raise `PathNotFound` for a missing key.
    - `put` and `writer(...).commit()` are atomic: readers see the old content or the new, never a mix.
    - `delete` removes a key or a whole prefix and is idempotent (no error when missing).
    - `list` returns the sorted names of the direct children of a prefix, files and directories,
      from just after `after`, at most `limit` of them; a missing prefix lists as empty.
    - `redirect_url` returns a URL that clients may fetch the key from directly, or None.
    """

    name: str

    async def get(self, key: str) -> bytes: ...

    async def put(self, key: str, data: bytes) -> None: ...

    def reader(
        self, key: str, offset: int = 0, length: int | None = None, chunk_size: int = READ_CHUNK
    ) -> AsyncIterator[bytes]: ...

    async def writer(self, key: str, append: bool = False) -> BlobWriter: ...

    async def stat(self, key: str) -> FileInfo: ...

    async def list(self, prefix: str, after: str | None = None, limit: int | None = None) -> list[str]: ...

    async def move(self, src: str, dst: str) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def redirect_url(self, key: str, method: str = "GET") -> str | None: ...

    async def close(self) -> None: ...


# What `WalksTree.walk` returns: (directory key relative to the walk's prefix, its sorted entries).
Tree = list[tuple[str, list[str]]]


@runtime_checkable
class WalksTree(Protocol):
    """Optional: a whole directory tree in one call, where walking it by `list` costs one call per
    directory (a catalog over thousands of repositories)."""

    async def walk(self, prefix: str, descend: Callable[[str], bool]) -> Tree:
        """Every directory below `prefix` reached through entries `descend` accepts, as (key relative
        to `prefix`, its sorted entries, files and directories), the prefix itself first as "". A
        missing prefix gives []. The same answer as walking with `list`, in any order."""
        ...


@runtime_checkable
class LocalFiles(Protocol):
    """Optional: keys are files on the local filesystem, which a server may send without copying."""

    def local_path(self, key: str) -> Path:
        """The file holding the bytes of `key` (which need not exist)."""
        ...


@runtime_checkable
class Wrapper(Protocol):
    """A backend in front of another one (counting its errors, say). The optional features, which
    only read, are the inner backend's: `innermost` finds it."""

    @property
    def inner(self) -> StorageBackend: ...


def innermost(backend: StorageBackend) -> StorageBackend:
    """The backend behind every wrapper: the one whose optional features apply."""
    while isinstance(backend, Wrapper):
        backend = backend.inner
    return backend


def check_key(key: str) -> str:
    from storage_backends.errors import InvalidPath

    if not KEY_RE.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise InvalidPath(key)
    return key
