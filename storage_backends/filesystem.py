"""Filesystem backend: keys are paths below a root directory (distribution's layout works as is)."""

from __future__ import annotations

import asyncio
import bisect
import errno
import os
import shutil
import stat
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from storage_backends.base import READ_CHUNK, FileInfo, Tree, check_key
from storage_backends.errors import BackendError, PathNotFound
from storage_backends.options import FilesystemOptions

# Small writes are gathered to this size before a thread hop writes them out.
_WRITE_BUFFER = 1024 * 1024
_TMP_MARK = ".tmp-"
_CREATE_ATTEMPTS = 5

_T = TypeVar("_T")


def _create_in(directory: Path, create: Callable[[], _T]) -> _T:
    """Make `directory`, then run `create`, which adds an entry to it. A concurrent delete prunes
    empty parent directories (GC does so while the registry serves), and may remove the directory
    between the two steps: then both are tried again."""
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            return create()
        except (FileNotFoundError, FileExistsError):
            if directory.is_dir() or attempt == _CREATE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class _FsWriter:
    def __init__(self, backend: FilesystemBackend, key: str, final: Path, append: bool) -> None:
        self._backend = backend
        self._key = key
        self._final = final
        self._append = append
        self._target = final if append else final.with_name(f"{final.name}{_TMP_MARK}{uuid.uuid4().hex}")
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._fd = -1
        self._start = 0
        self._size = 0
        self._created = False

    async def open(self) -> None:
        def _open() -> tuple[int, int, bool]:
            created = not self._target.exists()
            flags = os.O_WRONLY | os.O_CREAT | (0 if self._append else os.O_TRUNC)
            fd = _create_in(self._target.parent, lambda: os.open(self._target, flags, 0o644))
            size = os.lseek(fd, 0, os.SEEK_END)
            return fd, size, created

        self._fd, self._start, self._created = await self._backend.run(_open)
        self._size = self._start

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self._buffer.append(data)
        self._buffered += len(data)
        self._size += len(data)
        if self._buffered >= _WRITE_BUFFER:
            await self._flush()

    async def _flush(self) -> None:
        if not self._buffered:
            return
        chunks, self._buffer, self._buffered = self._buffer, [], 0
        fd = self._fd

        def _write() -> None:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]

        await self._backend.run(_write)

    async def commit(self) -> None:
        await self._flush()
        fd, target, final, append = self._fd, self._target, self._final, self._append

        def _commit() -> None:
            os.fsync(fd)
            os.close(fd)
            if not append:
                os.replace(target, final)

        self._fd = -1
        await self._backend.run(_commit)

    async def cancel(self) -> None:
        self._buffer, self._buffered = [], 0
        fd, target, append, start = self._fd, self._target, self._append, self._start
        # An append to a key that did not exist leaves nothing behind, like any other cancelled write.
        remove = not append or self._created
        self._fd = -1
        if fd < 0:
            return

        def _cancel() -> None:
            if append and not remove:
                os.ftruncate(fd, start)
            os.close(fd)
            if remove:
                target.unlink(missing_ok=True)
                self._backend.prune_empty_parents(target.parent)

        await self._backend.run(_cancel)


def _close_after(read: asyncio.Future[bytes] | None, fd: int) -> None:
    if read is not None and not read.cancelled():
        read.exception()  # retrieved: an abandoned read-ahead's error is nobody's to report
    os.close(fd)


class _Listings:
    """Sorted listings of big directories (a repository's tags), reused while the directory is unchanged.

    Adding or removing an entry changes a directory's mtime, so every use stats the directory and
    storage stays the truth, for every replica. Timestamps come from a coarse clock, so a listing is
    kept only if the directory last changed over a second before it was stat'ed: any later change
    then shows as a later mtime. Small directories are listed afresh; they cost less than the check.
    """

    MIN_ENTRIES = 512
    MAX_NAMES = 100_000
    SETTLED_NS = 1_000_000_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[tuple[int, int, int], list[str]]] = OrderedDict()
        self._names = 0

    def names(self, path: str) -> list[str]:
        """The sorted entries of directory `path` (without temporary files); do not modify."""
        now = time.time_ns()
        before = os.stat(path)
        version = (before.st_dev, before.st_ino, before.st_mtime_ns)
        with self._lock:
            item = self._items.get(path)
            if item is not None and item[0] == version:
                self._items.move_to_end(path)
                return item[1]
        names = sorted(n for n in os.listdir(path) if _TMP_MARK not in n)
        if len(names) >= self.MIN_ENTRIES and now - before.st_mtime_ns > self.SETTLED_NS:
            with self._lock:
                old = self._items.pop(path, None)
                self._names += len(names) - (len(old[1]) if old else 0)
                self._items[path] = (version, names)
                while self._names > self.MAX_NAMES:
                    _, (_, dropped) = self._items.popitem(last=False)
                    self._names -= len(dropped)
        return names


@dataclass
class FilesystemBackend:
    root: Path
    max_threads: int = 64
    name: str = "filesystem"

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        self._limiter = anyio.CapacityLimiter(self.max_threads)
        self._listings = _Listings()

    @classmethod
    def from_config(cls, options: FilesystemOptions) -> FilesystemBackend:
        return cls(root=Path(options.rootdirectory), max_threads=options.maxthreads)

    async def run(self, func: Any, *args: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        except FileNotFoundError as exc:
            raise PathNotFound(str(exc.filename or "")) from exc
        except NotADirectoryError as exc:
            raise PathNotFound(str(exc.filename or "")) from exc
        except OSError as exc:
            raise BackendError(f"filesystem error: {exc.strerror or exc}") from exc

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            data: bytes = await self.run(path.read_bytes)
        except PathNotFound:
            raise PathNotFound(key) from None
        except BackendError as exc:
            if path.is_dir():
                raise PathNotFound(key) from None
            raise exc
        return data

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)

        def _put() -> None:
            tmp = path.with_name(f"{path.name}{_TMP_MARK}{uuid.uuid4().hex}")
            fd = _create_in(path.parent, lambda: os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)

        await self.run(_put)

    async def reader(
        self, key: str, offset: int = 0, length: int | None = None, chunk_size: int = READ_CHUNK
    ) -> AsyncIterator[bytes]:
        path = self._path(key)

        def _open() -> int:
            fd = os.open(path, os.O_RDONLY)
            if stat.S_ISDIR(os.fstat(fd).st_mode):  # a directory opens fine for reading but is no file
                os.close(fd)
                raise FileNotFoundError(errno.ENOENT, "is a directory", str(path))
            return fd

        try:
            fd: int = await self.run(_open)
        except PathNotFound:
            raise PathNotFound(key) from None
        end = None if length is None else offset + length

        def _read(position: int) -> bytes:
            return os.pread(fd, chunk_size if end is None else min(chunk_size, end - position), position)

        # The next block is read while this one is being sent, so the file and the socket work at
        # the same time instead of taking turns.
        ahead: asyncio.Future[bytes] | None = asyncio.ensure_future(self.run(_read, offset)) if end != offset else None
        try:
            position = offset
            while ahead is not None:
                chunk = await ahead
                ahead = None
                if not chunk:
                    break
                position += len(chunk)
                if end is None or position < end:
                    ahead = asyncio.ensure_future(self.run(_read, position))
                yield chunk
        finally:
            if ahead is None or ahead.done():
                _close_after(ahead, fd)
            else:  # a read still runs in a thread: the descriptor is closed once it is done
                ahead.add_done_callback(lambda future: _close_after(future, fd))

    async def writer(self, key: str, append: bool = False) -> _FsWriter:
        writer = _FsWriter(self, key, self._path(key), append)
        await writer.open()
        return writer

    async def stat(self, key: str) -> FileInfo:
        path = self._path(key)
        try:
            st = await self.run(os.stat, path)
        except PathNotFound:
            raise PathNotFound(key) from None
        is_dir = (st.st_mode & 0o170000) == 0o040000
        return FileInfo(key=key, size=0 if is_dir else st.st_size, modified=st.st_mtime, is_dir=is_dir)

    async def list(self, prefix: str, after: str | None = None, limit: int | None = None) -> list[str]:
        path = self._path(prefix) if prefix else self.root

        def _list() -> list[str]:
            try:
                names = self._listings.names(str(path))
            except (FileNotFoundError, NotADirectoryError):
                return []
            start = 0 if after is None else bisect.bisect_right(names, after)
            return names[start:] if limit is None else names[start : start + limit]

        result: list[str] = await self.run(_list)
        return result

    async def walk(self, prefix: str, descend: Callable[[str], bool]) -> Tree:
        """Every directory below `prefix` reached through entries `descend` accepts, as (key relative
        to `prefix`, its sorted entries), the prefix itself first as "". One thread hop for the whole
        tree: a catalog walk visits thousands of small directories, and a hop costs ten listings."""
        top = str(self._path(prefix) if prefix else self.root)

        def _walk() -> Tree:
            found: Tree = []
            pending = [("", top)]
            while pending:
                relative, directory = pending.pop()
                try:
                    with os.scandir(directory) as scan:
                        entries = sorted((e.name, e.is_dir()) for e in scan if _TMP_MARK not in e.name)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                found.append((relative, [name for name, _ in entries]))
                for name, is_dir in reversed(entries):
                    if is_dir and descend(name):
                        pending.append((f"{relative}/{name}" if relative else name, f"{directory}/{name}"))
            return found

        result: Tree = await self.run(_walk)
        return result

    async def move(self, src: str, dst: str) -> None:
        source, target = self._path(src), self._path(dst)

        def _move() -> None:
            if not source.exists():
                raise FileNotFoundError(errno.ENOENT, "no such file", str(source))
            _create_in(target.parent, lambda: os.replace(source, target))

        try:
            await self.run(_move)
        except PathNotFound:
            raise PathNotFound(src) from None

    async def delete(self, key: str) -> None:
        path = self._path(key)

        def _delete() -> None:
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=False)
                else:
                    path.unlink()
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            self.prune_empty_parents(path.parent)

        await self.run(_delete)

    def prune_empty_parents(self, directory: Path) -> None:
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        return None

    def local_path(self, key: str) -> Path:
        """The file behind a key, for zero-copy responses."""
        return self._path(key)

    async def close(self) -> None:
        return None
