"""Blob uploads as stored sessions: monolithic, chunked and streamed, resumable by any process.

The bytes of an upload live in storage (`_uploads/<id>/data`), so any worker or replica can
continue one. The sha256 of the bytes so far is kept by the process that received them and
recorded next to the upload, so completion rarely has to read the upload back.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from oci.digest import Digest, new_hasher
from registry import paths
from registry.errors import ErrorCode, RegistryError
from storage_backends import PathNotFound, StorageBackend

if TYPE_CHECKING:
    from registry.policies.quota import Quotas

UPLOAD_ID_LEN = 36


class _LiveHash:
    """The hasher of an upload in progress in this process, valid while `offset` matches storage."""

    __slots__ = ("hasher", "offset")

    def __init__(self) -> None:
        self.hasher = hashlib.sha256()
        self.offset = 0


class Uploads:
    def __init__(
        self,
        backend: StorageBackend,
        link: Callable[[str, Digest], Awaitable[None]],
    ) -> None:
        self.backend = backend
        self._link = link
        self._hashes: dict[str, _LiveHash] = {}
        self._upload_locks: dict[str, asyncio.Lock] = {}
        # Set by registry/policies when quotas are configured: checked before bytes are stored.
        self.quota: Quotas | None = None

    async def start_upload(self, name: str) -> str:
        upload_id = str(uuid.uuid4())
        started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        await self.backend.put(paths.upload_started(name, upload_id), started.encode())
        await self.backend.put(paths.upload_data(name, upload_id), b"")
        self._hashes[upload_id] = _LiveHash()
        return upload_id

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._upload_locks.get(upload_id)
        if lock is None:
            lock = self._upload_locks[upload_id] = asyncio.Lock()
        return lock

    def _forget(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)
        self._upload_locks.pop(upload_id, None)

    async def upload_size(self, name: str, upload_id: str) -> int:
        if len(upload_id) != UPLOAD_ID_LEN:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, detail={"uuid": upload_id})
        try:
            return (await self.backend.stat(paths.upload_data(name, upload_id))).size
        except PathNotFound:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, detail={"uuid": upload_id}) from None

    async def append_upload(
        self,
        name: str,
        upload_id: str,
        chunks: AsyncIterator[bytes],
        start: int | None = None,
        length: int | None = None,
        claimed: Digest | None = None,
    ) -> int:
        """Append a chunk. `start` (from Content-Range) must be the current size; returns the new size.

        A chunk that fails midway (client gone, wrong length) is rolled back, so the upload stays
        at its previous size and can be resumed. `claimed` is the digest the request says the whole
        upload has (a monolithic POST or a completing PUT): a blob the quota's repositories already
        hold costs nothing, so its bytes are not refused for their length (registry/policies/quota.py).
        """
        async with self._lock(upload_id):
            size = await self.upload_size(name, upload_id)
            if start is not None and start != size:
                raise _range_error(size)
            quota = self.quota
            if quota is not None and length is not None:
                await quota.check(name, size + length, claimed, verified=False)
            live = self._hashes.get(upload_id)
            if live is not None and live.offset != size:
                live = None  # another process wrote since: the hash is rebuilt at completion
            if live is None and size == 0:
                live = self._hashes[upload_id] = _LiveHash()  # a fresh upload: nothing to catch up on
            writer = await self.backend.writer(paths.upload_data(name, upload_id), append=True)
            hasher = live.hasher.copy() if live is not None else None
            written = 0
            try:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    written += len(chunk)
                    if length is not None and written > length:
                        raise RegistryError(ErrorCode.SIZE_INVALID, detail="chunk longer than its Content-Length")
                    if quota is not None and length is None:
                        await quota.check(name, size + written, claimed, verified=False)
                    if hasher is not None:
                        hasher.update(chunk)
                    await writer.write(chunk)
                if length is not None and written != length:
                    raise RegistryError(ErrorCode.SIZE_INVALID, detail="chunk shorter than its Content-Length")
                await writer.commit()
            except BaseException:
                await writer.cancel()
                raise
            new_size = size + written
            if hasher is not None and live is not None:
                live.hasher, live.offset = hasher, new_size
                # Recorded so that the final PUT can land on any worker or replica without a re-read.
                digest_key = paths.upload_digest(name, upload_id, "sha256", new_size)
                await self.backend.put(digest_key, hasher.hexdigest().encode())
            else:
                self._hashes.pop(upload_id, None)
            return new_size

    async def _upload_digest(self, name: str, upload_id: str, algorithm: str, size: int) -> str:
        live = self._hashes.get(upload_id)
        if algorithm == "sha256" and live is not None and live.offset == size:
            return live.hasher.hexdigest()
        try:
            recorded = await self.backend.get(paths.upload_digest(name, upload_id, algorithm, size))
            return recorded.decode()
        except PathNotFound:
            pass
        # Nobody hashed these bytes as they came (chunks spread over processes, a restart, or
        # another algorithm): read them back once.
        hasher = new_hasher(algorithm)
        async for chunk in self.backend.reader(paths.upload_data(name, upload_id)):
            hasher.update(chunk)
        return hasher.hexdigest()

    async def complete_upload(
        self,
        name: str,
        upload_id: str,
        digest_text: str | None,
        chunks: AsyncIterator[bytes] | None,
        start: int | None = None,
        length: int | None = None,
    ) -> Digest:
        digest = _parse_digest_param(digest_text)
        if chunks is not None:
            try:
                size = await self.append_upload(name, upload_id, chunks, start, length, digest)
            except RegistryError as exc:
                if exc.policy == "quota":  # refused at its last request, as below: nothing is left
                    await self._discard(name, upload_id)
                raise
        else:
            size = await self.upload_size(name, upload_id)
        async with self._lock(upload_id):
            size = await self.upload_size(name, upload_id)
            actual = await self._upload_digest(name, upload_id, digest.algorithm, size)
            if actual != digest.encoded:
                raise RegistryError(
                    ErrorCode.DIGEST_INVALID,
                    detail={"expected": str(digest), "actual": f"{digest.algorithm}:{actual}"},
                )
            if self.quota is not None:
                try:
                    await self.quota.check(name, size, digest)
                except RegistryError:
                    await self._discard(name, upload_id)
                    raise
            await self._commit_blob(paths.upload_data(name, upload_id), digest)
            await self._link(name, digest)
            await self.backend.delete(paths.upload_dir(name, upload_id))
        self._forget(upload_id)
        if self.quota is not None:
            self.quota.stored(name)
        return digest

    async def _discard(self, name: str, upload_id: str) -> None:
        await self.backend.delete(paths.upload_dir(name, upload_id))
        self._forget(upload_id)

    async def _commit_blob(self, source_key: str, digest: Digest) -> None:
        target = paths.blob_data(digest)
        try:
            await self.backend.stat(target)
        except PathNotFound:
            await self.backend.move(source_key, target)

    async def put_blob(
        self, name: str, chunks: AsyncIterator[bytes], digest_text: str | None, length: int | None = None
    ) -> Digest:
        """A monolithic upload in one request (POST ?digest=)."""
        _parse_digest_param(digest_text)
        upload_id = await self.start_upload(name)
        try:
            return await self.complete_upload(name, upload_id, digest_text, chunks, None, length)
        except BaseException:
            await self.backend.delete(paths.upload_dir(name, upload_id))
            self._forget(upload_id)
            raise

    async def cancel_upload(self, name: str, upload_id: str) -> None:
        await self.upload_size(name, upload_id)
        await self.backend.delete(paths.upload_dir(name, upload_id))
        self._forget(upload_id)

    async def purge(self, name: str, cutoff: float) -> int:
        """Delete the upload sessions of `name` started before `cutoff`; returns how many."""
        purged = 0
        for upload_id in await self.backend.list(paths.uploads(name)):
            try:
                modified = (await self.backend.stat(paths.upload_started(name, upload_id))).modified
            except PathNotFound:
                modified = (await self.backend.stat(paths.upload_dir(name, upload_id))).modified
            if modified < cutoff:
                await self.backend.delete(paths.upload_dir(name, upload_id))
                self._forget(upload_id)
                purged += 1
        return purged


def _range_error(size: int) -> RegistryError:
    return RegistryError(
        ErrorCode.BLOB_UPLOAD_INVALID,
        detail={"size": size},
        headers={"Range": f"0-{max(size - 1, 0)}"},
        message="chunk does not start at the end of the upload",
        status=416,
    )


def _parse_digest_param(text: str | None) -> Digest:
    if not text:
        raise RegistryError(ErrorCode.DIGEST_INVALID, detail="digest parameter missing")
    return Digest.parse(text)
