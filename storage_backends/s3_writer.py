"""Writers for the S3 backend.

A plain writer is a multipart upload straight to its key (a single PutObject when the data fits
in one part), so the object appears whole on commit.

An append writer grows a *segmented object*, the form an upload takes while its PATCH requests
arrive, possibly on different replicas. The key holds a small JSON manifest (marked in the
object's metadata) listing segment objects stored under `~segments/<key>/`; each writer session
adds one segment, itself a multipart upload when large. Nothing is downloaded to continue, except
a last segment smaller than S3's 5 MiB minimum part, which is merged into the next one so that
every segment but the last can later be a part of an UploadPartCopy. Committing is writing the new
manifest, one atomic PutObject. `move` turns a segmented object into a plain one server-side.
"""

from __future__ import annotations

import bisect
import io
import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Any

from storage_backends.errors import BackendError, PathNotFound
from storage_backends.s3_bucket import MAX_PARTS, MIN_PART, Bucket, Piece

MARK = "dockyard-segments"  # user metadata that marks a manifest object
SIZE = "dockyard-size"  # user metadata: the logical size of a segmented object
# "~" is outside the key alphabet (base.KEY_RE), so this prefix cannot collide with a key.
SIDECAR = "~segments"


def sidecar(root: str, key: str) -> str:
    """The prefix under which the segments of `key` (and of every key below it) live."""
    return f"{root}{SIDECAR}/{key}/"


@dataclass(frozen=True)
class Segment:
    name: str
    size: int


@dataclass(frozen=True)
class Segments:
    """The manifest of a segmented object."""

    prefix: str  # sidecar(root, key)
    items: tuple[Segment, ...] = ()

    @property
    def size(self) -> int:
        return sum(item.size for item in self.items)

    def pieces(self) -> list[Piece]:
        return [Piece(self.prefix + item.name, 0, item.size) for item in self.items]

    def encode(self) -> bytes:
        return json.dumps({"segments": [[item.name, item.size] for item in self.items]}).encode()

    @classmethod
    def decode(cls, prefix: str, data: bytes) -> Segments:
        try:
            items = tuple(Segment(str(name), int(size)) for name, size in json.loads(data)["segments"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"corrupt segment manifest under {prefix}") from exc
        return cls(prefix, items)


def is_segmented(response: dict[str, Any]) -> bool:
    return MARK in response.get("Metadata", {})


class PartBody(io.RawIOBase):
    """A part as a file over the written chunks, so that it reaches botocore without being joined:
    the writer holds one reference to each chunk and no copy. Seekable, for botocore's retries."""

    def __init__(self, chunks: list[memoryview]) -> None:
        super().__init__()
        self._chunks = chunks
        self._starts = list(itertools.accumulate((len(c) for c in chunks), initial=0))
        self._size = self._starts[-1]
        self._pos = 0

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = min(max(0, base + offset), self._size)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        done = 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        while done < len(target) and self._pos < self._size:
            chunk = self._chunks[index][self._pos - self._starts[index] :]
            count = min(len(chunk), len(target) - done)
            target[done : done + count] = chunk[:count]
            done += count
            self._pos += count
            index += 1
        return done


class MultipartWriter:
    """Gathers writes into parts of `part_size` and uploads them as one multipart upload to `key`
    (one part in memory at a time); with less than one part in total, `finish` writes a single
    object instead."""

    def __init__(self, bucket: Bucket, key: str, part_size: int, initial: bytes = b"") -> None:
        self._bucket = bucket
        self.key = key
        self._part_size = max(part_size, MIN_PART)
        self._chunks: list[memoryview] = []
        self._filled = 0
        self._upload_id: str | None = None
        self._etags: list[str] = []
        self.written = 0
        self._add(initial)

    def _add(self, data: bytes) -> list[list[memoryview]]:
        """Take `data` into the current part; returns the parts it completed."""
        full: list[list[memoryview]] = []
        view = memoryview(data)
        self.written += len(view)
        while view:
            take = view[: self._part_size - self._filled]
            self._chunks.append(take)
            self._filled += len(take)
            view = view[len(take) :]
            if self._filled == self._part_size:
                full.append(self._chunks)
                self._chunks, self._filled = [], 0
        return full

    async def write(self, data: bytes) -> None:
        # Chunks are kept by reference: copy anything that the caller might change afterwards.
        for part in self._add(data if isinstance(data, bytes) else bytes(data)):
            if self._upload_id is None:
                created = await self._bucket.call("create_multipart_upload", Key=self.key, **self._bucket.write_args)
                self._upload_id = created["UploadId"]
            await self._upload(part)

    async def _upload(self, chunks: list[memoryview]) -> None:
        # One part at a time: a second part in flight would speed up a push by a little (the store
        # is the bottleneck) and add a part's worth of memory per upload.
        if len(self._etags) >= MAX_PARTS:
            raise BackendError(f"write to {self.key} exceeds {MAX_PARTS} parts; raise storage.s3.chunksize")
        result = await self._bucket.call(
            "upload_part",
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=len(self._etags) + 1,
            Body=PartBody(chunks),
        )
        self._etags.append(result["ETag"])

    async def finish(self, metadata: dict[str, str] | None = None) -> None:
        chunks, self._chunks, self._filled = self._chunks, [], 0
        if self._upload_id is None:
            await self._bucket.put(self.key, PartBody(chunks), metadata)
            return
        if chunks:
            await self._upload(chunks)
        upload_id, self._upload_id = self._upload_id, None
        await self._bucket.complete(self.key, upload_id, self._etags)

    async def abort(self) -> None:
        self._chunks, self._filled = [], 0
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            await self._bucket.abort(self.key, upload_id)


class ObjectWriter:
    """`writer(key)`: the object appears whole on commit, or not at all."""

    def __init__(self, bucket: Bucket, key: str, part_size: int) -> None:
        self._parts = MultipartWriter(bucket, key, part_size)

    @property
    def size(self) -> int:
        return self._parts.written

    async def write(self, data: bytes) -> None:
        await self._parts.write(data)

    async def commit(self) -> None:
        await self._parts.finish()

    async def cancel(self) -> None:
        await self._parts.abort()


class AppendWriter:
    """`writer(key, append=True)`: one more segment of a segmented object."""

    def __init__(self, bucket: Bucket, key: str, prefix: str, part_size: int) -> None:
        self._bucket = bucket
        self._key = key  # the full S3 key of the manifest
        self._prefix = prefix  # sidecar(root, key)
        self._part_size = part_size
        self._kept: list[Segment] = []
        self._merged: str | None = None  # a small last segment, merged into the new one
        self._adopted: str | None = None  # a plain object's copy, referenced only once committed
        self._parts: MultipartWriter | None = None
        self._size = 0

    async def open(self) -> None:
        tail = b""
        try:
            response: dict[str, Any] | None = await self._bucket.get(self._key)
        except PathNotFound:
            response = None
        if response is not None and is_segmented(response):
            self._kept = list(Segments.decode(self._prefix, await self._bucket.read_all(self._key, response)).items)
        elif response is not None:
            # A plain object (such as the empty one an upload starts with) becomes the first segment.
            size = int(response.get("ContentLength", 0))
            if size < MIN_PART:
                tail = await self._bucket.read_all(self._key, response)
            else:
                response["Body"].close()
                self._adopted = _new_name()
                await self._bucket.copy(self._key, self._prefix + self._adopted, size)
                self._kept.append(Segment(self._adopted, size))
        if self._kept and self._kept[-1].size < MIN_PART:
            last = self._kept.pop()
            tail = await self._bucket.read_all(self._prefix + last.name)
            self._merged = last.name
        self._size = sum(item.size for item in self._kept) + len(tail)
        self._parts = MultipartWriter(self._bucket, self._prefix + _new_name(), self._part_size, tail)

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        if self._parts is None:
            raise BackendError("write after commit or cancel")
        await self._parts.write(data)
        self._size += len(data)

    async def commit(self) -> None:
        if self._parts is None:
            raise BackendError("commit after commit or cancel")
        parts, self._parts = self._parts, None
        items = list(self._kept)
        if parts.written:
            await parts.finish()
            items.append(Segment(parts.key[len(self._prefix) :], parts.written))
        manifest = Segments(self._prefix, tuple(items))
        await self._bucket.put(self._key, manifest.encode(), {MARK: "1", SIZE: str(manifest.size)})
        if self._merged is not None:
            await self._bucket.delete_keys([self._prefix + self._merged])

    async def cancel(self) -> None:
        if self._parts is not None:
            parts, self._parts = self._parts, None
            await parts.abort()
            if self._adopted is not None:
                await self._bucket.delete_keys([self._prefix + self._adopted])


def _new_name() -> str:
    return f"~{uuid.uuid4().hex}"
