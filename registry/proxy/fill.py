"""Single-flight blob fills: one upstream download per digest, however many clients ask at once.

The download is spooled to an unlinked local temp file as it arrives and hashed on the way;
every client waiting for the blob reads the spool at its own pace, so the fiftieth client gets the
bytes as they arrive, not after the download ends. The last byte is held back until the whole
blob has been verified against its digest: a blob that does not match is never completed to any
client (their responses are cut short) and never stored. A verified blob is committed to the
backend once (an atomic write of the digest's key: a second replica filling the same digest at the
same time writes identical bytes) and linked into each repository that asked for it.

A fill whose clients all went away keeps going while at most `background_limit` bytes remain, so
the next pull is a hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from typing import BinaryIO

import httpx

from oci.digest import Digest, new_hasher
from registry import paths
from registry.proxy.metrics import ProxyMetrics
from registry.proxy.routing import Target
from registry.proxy.spools import Claim, Follow, Spools
from registry.proxy.upstream import Failure, UpstreamError
from storage_backends import BlobWriter, PathNotFound, StorageBackend

log = logging.getLogger("dockyard.proxy")

_CHUNK = 1024 * 1024
# How often a follower looks at another process's spool for more bytes.
_FOLLOW_POLL = 0.02


class Fill:
    """One download in progress, shared by every client that wants its digest."""

    def __init__(self, digest: Digest, label: str, keep: bool) -> None:
        self.digest = digest
        self.label = label
        self.keep = keep  # a warm-up: no client, never abandoned
        self.size: int | None = None
        self.written = 0
        self.done = False
        # The bytes matched the digest: all of them may go out, while they are still being committed.
        self.verified = False
        self.error: UpstreamError | None = None
        self.readers = 0
        self.names: set[str] = set()
        self.opened = asyncio.Event()
        self._changed = asyncio.Condition()
        self._spool: BinaryIO | None = None

    def attach(self, spool: BinaryIO) -> None:
        """Where the bytes are kept as they arrive: set before `opened`."""
        self._spool = spool

    @property
    def finished(self) -> bool:
        return self.done or self.error is not None

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_done(self) -> None:
        async with self._changed:
            while not self.finished:
                await self._changed.wait()
        if self.error is not None:
            raise self.error

    def reader(self) -> AsyncIterator[bytes]:
        """The blob's bytes from the start, as they arrive; raises `UpstreamError` if the fill fails."""
        self.readers += 1
        return self._read()

    async def _read(self) -> AsyncIterator[bytes]:
        assert self.size is not None and self._spool is not None
        position = 0
        try:
            while position < self.size:
                async with self._changed:
                    while True:
                        if self.error is not None:
                            raise self.error
                        # Everything but the last byte may go out before the digest is checked.
                        complete = self.done or self.verified
                        available = self.size if complete else min(self.written, self.size - 1)
                        if available > position:
                            break
                        await self._changed.wait()
                count = min(available - position, _CHUNK)
                data = await asyncio.to_thread(os.pread, self._spool.fileno(), count, position)
                position += len(data)
                yield data
        finally:
            self.readers -= 1

    def spool_write(self, data: bytes, offset: int) -> None:
        assert self._spool is not None
        os.pwrite(self._spool.fileno(), data, offset)


async def _blocks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as sent (no decoding: blobs are stored as they travel) in blocks of about `_CHUNK`."""
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        async for chunk in response.aiter_bytes(_CHUNK):
            yield chunk
        return
    pending: list[bytes] = []
    size = 0
    async for piece in response.aiter_raw():
        pending.append(piece)
        size += len(piece)
        if size >= _CHUNK:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


class Filler:
    def __init__(
        self, backend: StorageBackend, metrics: ProxyMetrics, background_limit: int, spools: Spools | None = None
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.background_limit = background_limit
        self.spools = spools or Spools(None)
        self._fills: dict[Digest, Fill] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def fill(self, target: Target, name: str, digest: Digest, keep: bool = False) -> Fill:
        """The running fill of `digest`, joined, or a new one started."""
        running = self._fills.get(digest)
        if running is not None and running.error is None:
            running.names.add(name)
            self.metrics.coalesced.labels(target.upstream.label).inc()
            return running
        fill = Fill(digest, target.upstream.label, keep)
        fill.names.add(name)
        self._fills[digest] = fill
        task = asyncio.create_task(self._run(target, fill))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fill

    async def _run(self, target: Target, fill: Fill) -> None:
        writer: BlobWriter | None = None
        response: httpx.Response | None = None
        claim = self.spools.claim(fill.digest)
        try:
            if isinstance(claim, Follow):
                self.metrics.coalesced.labels(fill.label).inc()
                await self._follow(fill, claim)
                return
            fill.attach(claim.spool)
            # Blobs are already compressed where they are: the bytes as stored are the ones to hash.
            response = await target.upstream.open(
                "GET", target.remote, f"blobs/{fill.digest}", {"Accept-Encoding": "identity"}
            )
            length = response.headers.get("content-length")
            fill.size = int(length) if length and length.isdigit() else None
            claim.announce(fill.size)
            fill.opened.set()
            writer = await self.backend.writer(paths.blob_data(fill.digest))
            await self._pump(target, fill, response, writer)
            fill.verified = True
            await fill.notify()
            await writer.commit()
            writer = None
            for name in sorted(fill.names):
                await self.backend.put(paths.layer_link(name, fill.digest), str(fill.digest).encode())
            fill.done = True
        except UpstreamError as exc:
            fill.error = exc
        except httpx.HTTPError as exc:
            fill.error = UpstreamError(Failure.UNAVAILABLE, f"download from upstream {fill.label} broke off: {exc}")
        except BaseException as exc:
            fill.error = UpstreamError(Failure.UNAVAILABLE, f"download from upstream {fill.label} failed")
            if not isinstance(exc, Exception):
                raise
            log.exception("blob fill of %s from %s failed", fill.digest, fill.label)
        finally:
            if fill.error is not None:
                self.metrics.upstream_errors.labels(fill.label, fill.error.failure.value).inc()
                log.warning("blob fill of %s from %s failed: %s", fill.digest, fill.label, fill.error.message)
            if writer is not None:
                await writer.cancel()
            if response is not None:
                await response.aclose()
            if isinstance(claim, Claim):
                claim.release()
            else:
                claim.close()
            if self._fills.get(fill.digest) is fill:
                del self._fills[fill.digest]
            fill.opened.set()
            await fill.notify()

    async def _pump(self, target: Target, fill: Fill, response: httpx.Response, writer: BlobWriter) -> None:
        hasher = new_hasher(fill.digest.algorithm)
        received = 0
        # One chunk is stored (spool and backend, side by side) while the next one arrives.
        storing: asyncio.Future[None] | None = None
        try:
            async for chunk in _blocks(response):
                received += len(chunk)
                if fill.size is not None and received > fill.size:
                    raise UpstreamError(Failure.CORRUPT, f"upstream {fill.label} sent more bytes than it announced")
                if storing is not None:
                    await storing
                remaining = (fill.size or 0) - fill.written
                if not fill.keep and fill.readers == 0 and remaining > self.background_limit:
                    raise UpstreamError(Failure.UNAVAILABLE, "every client went away with too much left to fetch")
                storing = asyncio.ensure_future(self._store(fill, writer, hasher, chunk))
            if storing is not None:
                await storing
        finally:
            if storing is not None and not storing.done():
                storing.cancel()
                with contextlib.suppress(BaseException):
                    await storing
        if fill.size is not None and fill.written != fill.size:
            raise UpstreamError(Failure.UNAVAILABLE, f"upstream {fill.label} ended the download early")
        fill.size = fill.written
        got = f"{fill.digest.algorithm}:{hasher.hexdigest()}"
        if got != str(fill.digest):
            raise UpstreamError(Failure.CORRUPT, f"upstream {fill.label} sent bytes that do not match {fill.digest}")

    async def _store(self, fill: Fill, writer: BlobWriter, hasher: hashlib._Hash, chunk: bytes) -> None:
        def spool_and_hash() -> None:
            fill.spool_write(chunk, fill.written)
            hasher.update(chunk)  # hashlib lets go of the GIL for large buffers

        await asyncio.gather(asyncio.to_thread(spool_and_hash), writer.write(chunk))
        fill.written += len(chunk)
        self.metrics.upstream_bytes.labels(fill.label).inc(len(chunk))
        await fill.notify()

    async def _follow(self, fill: Fill, follow: Follow) -> None:
        """Another process is downloading the blob: copy its spool as it grows, hashing every byte,
        and finish once it has let go, the bytes match and the blob is in storage."""
        while True:
            known, size = follow.announced()
            if known:
                break
            if follow.owner_gone():
                raise UpstreamError(Failure.UNAVAILABLE, f"the download from upstream {fill.label} failed")
            await asyncio.sleep(_FOLLOW_POLL)
        fill.size = size
        fill.attach(tempfile.TemporaryFile(prefix="dockyard-fill-"))
        fill.opened.set()
        hasher = new_hasher(fill.digest.algorithm)
        while True:
            finished = follow.owner_gone()  # before looking at the length: then nothing more can come
            available = follow.available()
            if available > fill.written:
                data = await asyncio.to_thread(follow.read, min(available - fill.written, _CHUNK), fill.written)
                hasher.update(data)
                await asyncio.to_thread(fill.spool_write, data, fill.written)
                fill.written += len(data)
                await fill.notify()
                continue
            if finished or (size is not None and fill.written >= size):
                break
            await asyncio.sleep(_FOLLOW_POLL)
        if (size is not None and fill.written != size) or f"{fill.digest.algorithm}:{hasher.hexdigest()}" != str(
            fill.digest
        ):
            raise UpstreamError(Failure.UNAVAILABLE, f"the download from upstream {fill.label} failed")
        fill.verified = True
        await fill.notify()
        # The owner's commit, then the blob can be linked here. Another process's lock sends no event: poll.
        while not follow.owner_gone():  # noqa: ASYNC110
            await asyncio.sleep(_FOLLOW_POLL)
        try:
            await self.backend.stat(paths.blob_data(fill.digest))
        except PathNotFound:
            raise UpstreamError(Failure.UNAVAILABLE, f"the download from upstream {fill.label} failed") from None
        fill.size = fill.written
        for name in sorted(fill.names):
            await self.backend.put(paths.layer_link(name, fill.digest), str(fill.digest).encode())
        fill.done = True

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except BaseException:
                pass
