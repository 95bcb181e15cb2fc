"""One S3 bucket seen through boto3, off the event loop: calls, streamed ranged reads, server-side
copies and concatenation, batched deletes. Knows nothing of the backend's key layout."""

from __future__ import annotations

import functools
import io
import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from storage_backends.errors import BackendError, PathNotFound

log = logging.getLogger("dockyard.storage.s3")

MiB = 1024 * 1024
GiB = 1024 * MiB
# S3's multipart limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html).
MIN_PART = 5 * MiB
MAX_PART = 5 * GiB
MAX_PARTS = 10_000

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchUpload"})


class RangeNotSatisfiable(Exception):
    """The requested range starts at or past the end of the object (HTTP 416)."""


@dataclass(frozen=True)
class Piece:
    """Bytes [start, end) of the object at `key`."""

    key: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class Bucket:
    client: Any
    name: str
    limiter: anyio.CapacityLimiter
    # Arguments for every object this backend creates: SSE, storage class, ACL.
    write_args: dict[str, str] = field(default_factory=dict)
    copy_chunk: int = 32 * MiB
    copy_threshold: int = 32 * MiB
    copy_concurrency: int = 16
    # Re-requests of a stream that broke mid-body; botocore's own retries end when the headers arrive.
    stream_retries: int = 5

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=self.limiter)

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One S3 API call with botocore's retries; a missing key or upload raises PathNotFound."""
        try:
            result: dict[str, Any] = await self.run(getattr(self.client, operation), Bucket=self.name, **params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _MISSING_CODES:
                raise PathNotFound(str(params.get("Key", ""))) from None
            if code == "InvalidRange":
                raise RangeNotSatisfiable() from None
            request_id = exc.response.get("ResponseMetadata", {}).get("RequestId", "")
            log.warning("S3 %s %s failed: %s (S3 request id %s)", operation, params.get("Key", ""), code, request_id)
            raise BackendError(f"S3 {operation} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            log.warning("S3 %s %s failed: %s", operation, params.get("Key", ""), exc)
            raise BackendError(f"S3 {operation} failed: {exc}") from exc
        return result

    async def get(self, key: str, start: int = 0, end: int | None = None, if_match: str | None = None) -> Any:
        params: dict[str, Any] = {"Key": key}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if if_match:
            params["IfMatch"] = if_match
        return await self.call("get_object", **params)

    async def read_all(self, key: str, response: Any = None) -> bytes:
        """The whole (small) object, continuing the body of `response` if given, with the same
        retries as `stream`."""
        return b"".join([chunk async for chunk in self.stream(key, 0, None, MiB, response)])

    async def stream(
        self, key: str, start: int, end: int | None, chunk_size: int, response: Any = None
    ) -> AsyncIterator[bytes]:
        """Yield bytes [start, end) of `key` in chunks of at most `chunk_size`. A body that breaks off
        (reset, timeout) is requested again from where it stopped, pinned to the same ETag."""
        position, failures, etag = start, 0, None
        while end is None or position < end:
            if response is None:
                try:
                    response = await self.get(key, position, end, if_match=etag)
                except RangeNotSatisfiable:
                    return
            etag = etag or response.get("ETag")
            body = response["Body"]
            try:
                while end is None or position < end:
                    want = chunk_size if end is None else min(chunk_size, end - position)
                    try:
                        chunk: bytes = await self.run(body.read, want)
                    except (BotoCoreError, Urllib3Error, OSError) as exc:
                        failures += 1
                        if failures > self.stream_retries:
                            raise BackendError(f"S3 read of {key} failed: {exc}") from exc
                        log.warning(
                            "S3 read of %s broke at byte %d (%s); requesting the rest again", key, position, exc
                        )
                        await anyio.sleep(min(2.0, 0.1 * 2**failures) * random.uniform(0.5, 1.0))
                        break
                    if not chunk:
                        return
                    position += len(chunk)
                    yield chunk
            finally:
                body.close()
            response = None

    async def put(
        self, key: str, data: bytes | bytearray | io.RawIOBase, metadata: dict[str, str] | None = None
    ) -> None:
        await self.call("put_object", Key=key, Body=data, Metadata=metadata or {}, **self.write_args)

    async def copy(self, source: str, target: str, size: int) -> None:
        """Server-side copy: one CopyObject up to the threshold, a parallel multipart copy above."""
        if size <= min(self.copy_threshold, MAX_PART):
            await self.call(
                "copy_object", Key=target, CopySource={"Bucket": self.name, "Key": source}, **self.write_args
            )
        else:
            await self.concat([Piece(source, 0, size)], target)

    async def concat(self, pieces: list[Piece], target: str) -> None:
        """Create `target` from the pieces in order, server-side (UploadPartCopy). Every piece but
        the last must hold at least MIN_PART bytes."""
        pieces = [p for p in pieces if p.size > 0]
        if not pieces:
            await self.put(target, b"")
            return
        if len(pieces) == 1 and pieces[0].start == 0 and pieces[0].size <= min(self.copy_threshold, MAX_PART):
            await self.copy(pieces[0].key, target, pieces[0].size)
            return
        parts = self._split(pieces)
        if len(parts) > MAX_PARTS:
            raise BackendError(f"cannot assemble {target} from {len(parts)} parts; S3 allows {MAX_PARTS}")
        if any(p.size < MIN_PART for p in parts[:-1]):
            raise BackendError(f"cannot assemble {target}: a part below S3's 5 MiB minimum")
        upload = await self.call("create_multipart_upload", Key=target, **self.write_args)
        upload_id = upload["UploadId"]
        etags: list[str] = [""] * len(parts)
        semaphore = anyio.Semaphore(max(1, self.copy_concurrency))

        async def copy_part(number: int, part: Piece) -> None:
            async with semaphore:
                result = await self.call(
                    "upload_part_copy",
                    Key=target,
                    UploadId=upload_id,
                    PartNumber=number + 1,
                    CopySource={"Bucket": self.name, "Key": part.key},
                    CopySourceRange=f"bytes={part.start}-{part.end - 1}",
                )
                etags[number] = result["CopyPartResult"]["ETag"]

        try:
            async with anyio.create_task_group() as group:
                for number, part in enumerate(parts):
                    group.start_soon(copy_part, number, part)
            await self.complete(target, upload_id, etags)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.abort(target, upload_id)
            raise

    def _split(self, pieces: list[Piece]) -> list[Piece]:
        """Cut large pieces into copy parts of copy_chunk to 2 x copy_chunk bytes, for parallel copies."""
        chunk = max(MIN_PART, min(self.copy_chunk, MAX_PART // 2))
        parts: list[Piece] = []
        for piece in pieces:
            count = max(1, piece.size // chunk)
            bounds = [piece.start + piece.size * i // count for i in range(count + 1)]
            parts += [Piece(piece.key, a, b) for a, b in itertools.pairwise(bounds)]
        return parts

    async def complete(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = [{"ETag": etag, "PartNumber": number} for number, etag in enumerate(etags, start=1)]
        try:
            await self.call("complete_multipart_upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except PathNotFound:
            # NoSuchUpload on a retry whose first attempt completed but lost its response: the
            # object is there (AWS's advice for CompleteMultipartUpload retries).
            try:
                await self.call("head_object", Key=key)
            except PathNotFound:
                raise BackendError(f"multipart upload of {key} vanished before completion") from None

    async def abort(self, key: str, upload_id: str) -> None:
        try:
            await self.call("abort_multipart_upload", Key=key, UploadId=upload_id)
        except PathNotFound:
            pass  # already completed or aborted
        except BackendError as exc:
            log.warning("could not abort multipart upload of %s: %s", key, exc)

    async def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Prefix": prefix, "MaxKeys": 1000}
            if token:
                params["ContinuationToken"] = token
            page = await self.call("list_objects_v2", **params)
            found += [item["Key"] for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found

    async def delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            result = await self.call("delete_objects", Delete={"Objects": batch, "Quiet": True})
            errors = result.get("Errors", [])
            if errors:
                raise BackendError(f"S3 delete failed for {len(errors)} keys, e.g. {errors[0].get('Key')}")

    async def abort_uploads(self, prefix: str, keep: Callable[[str], bool] = lambda key: False) -> None:
        """Abort every multipart upload whose key starts with `prefix`, except those `keep` names."""
        params: dict[str, Any] = {"Prefix": prefix}
        while True:
            page = await self.call("list_multipart_uploads", **params)
            for upload in page.get("Uploads", []):
                if not keep(upload["Key"]):
                    await self.abort(upload["Key"], upload["UploadId"])
            if not page.get("IsTruncated"):
                return
            params["KeyMarker"] = page.get("NextKeyMarker", "")
            params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
