"""S3 backend (AWS S3, MinIO, Ceph RGW, Garage), configured by distribution's `storage.s3` keys.

Why boto3 in threads rather than aiobotocore: aiobotocore pins one exact botocore release (so it
fights boto3 and everything else that depends on botocore), trails botocore's fixes, and is not
where AWS ships credential providers and endpoint rules first. A thread hop costs microseconds
against milliseconds per S3 request; the client is thread-safe, and one `CapacityLimiter` sized
like the connection pool bounds the requests in flight.

Keys map to `<rootdirectory>/<key>`. Uploads grow as segmented objects (see `s3_writer`), whose
segments live under `<rootdirectory>/~segments/`, a name that `list` never shows.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import boto3
from botocore.config import Config as BotoConfig

from storage_backends.base import READ_CHUNK, FileInfo, check_key
from storage_backends.errors import BackendError, PathNotFound
from storage_backends.options import S3Options
from storage_backends.s3_bucket import Bucket, RangeNotSatisfiable
from storage_backends.s3_writer import (
    SIZE,
    AppendWriter,
    ObjectWriter,
    Segments,
    is_segmented,
    sidecar,
)

log = logging.getLogger("dockyard.storage.s3")

# Concurrent S3 requests per process; also the size of botocore's connection pool.
MAX_THREADS = 64


class S3Backend:
    name = "s3"

    def __init__(self, bucket: Bucket, root: str, chunk_size: int, redirect_expiry: int) -> None:
        self._bucket = bucket
        self._root = root  # "" or "<rootdirectory>/"
        self._chunk_size = chunk_size
        self._redirect_expiry = redirect_expiry

    @classmethod
    def from_config(cls, options: S3Options) -> S3Backend:
        """Build the backend from its `storage.s3` options."""
        if not options.bucket:
            raise ValueError("storage.s3.bucket is required")
        endpoint = options.regionendpoint or None
        if endpoint and "://" not in endpoint:
            endpoint = ("https://" if options.secure else "http://") + endpoint
        config = BotoConfig(
            region_name=options.region,
            signature_version="s3v4",
            s3={
                # Path style for endpoints without wildcard DNS (MinIO, Ceph, Garage on one host name);
                # otherwise botocore picks virtual-host style wherever the bucket name allows it.
                "addressing_style": "path" if options.forcepathstyle else "auto",
                "use_accelerate_endpoint": options.accelerate,
            },
            use_dualstack_endpoint=options.usedualstack or None,
            # "standard" retries throttling (503 SlowDown), 5xx, timeouts and connection resets
            # with jittered exponential backoff; every request the backend makes is safe to repeat.
            retries={"mode": "standard", "max_attempts": max(1, options.maxretries + 1)},
            connect_timeout=10,
            read_timeout=60,
            tcp_keepalive=True,
            max_pool_connections=MAX_THREADS,
            user_agent_extra=options.useragent or None,
            # botocore >= 1.36 adds CRC checksums (aws-chunked trailers) to every upload by default;
            # MinIO before 2025, Ceph RGW, Garage and other S3-compatibles reject or mis-store those.
            # Only send checksums where the API requires one.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session()
        client = session.client(
            "s3",
            endpoint_url=endpoint,
            verify=not options.skipverify,
            # None falls back to boto3's chain: environment, profile, web identity (IRSA), instance role.
            aws_access_key_id=options.accesskey or None,
            aws_secret_access_key=options.secretkey or None,
            aws_session_token=options.sessiontoken or None,
            config=config,
        )
        client.meta.events.register("before-sign.s3.DeleteObjects", _add_content_md5)
        write_args: dict[str, str] = {}
        if options.encrypt:
            write_args["ServerSideEncryption"] = "aws:kms" if options.keyid else "AES256"
            if options.keyid:
                write_args["SSEKMSKeyId"] = options.keyid
        if options.storageclass and options.storageclass.upper() != "NONE":
            write_args["StorageClass"] = options.storageclass
        # "private" is S3's default; sending it anyway fails on buckets with ACLs disabled.
        if options.objectacl and options.objectacl != "private":
            write_args["ACL"] = options.objectacl
        bucket = Bucket(
            client=client,
            name=options.bucket,
            limiter=anyio.CapacityLimiter(MAX_THREADS),
            write_args=write_args,
            copy_chunk=options.multipartcopychunksize,
            copy_threshold=options.multipartcopythresholdsize,
            copy_concurrency=min(options.multipartcopymaxconcurrency, MAX_THREADS // 2),
            stream_retries=options.maxretries,
        )
        root = options.rootdirectory.strip("/")
        return cls(bucket, f"{root}/" if root else "", options.chunksize, options.redirectexpiry)

    def _full(self, key: str) -> str:
        return self._root + check_key(key)

    async def get(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.reader(key)])

    async def put(self, key: str, data: bytes) -> None:
        await self._bucket.put(self._full(key), data)

    async def reader(
        self, key: str, offset: int = 0, length: int | None = None, chunk_size: int = READ_CHUNK
    ) -> AsyncIterator[bytes]:
        full = self._full(key)
        if length == 0:
            await self.stat(key)
            return
        end = None if length is None else offset + length
        try:
            response: dict[str, Any] | None = await self._bucket.get(full, offset, end)
        except PathNotFound:
            raise PathNotFound(key) from None
        except RangeNotSatisfiable:
            response = None  # past the end of a plain object, or a range of a manifest's JSON
        if response is None or is_segmented(response):
            if response is not None:
                response["Body"].close()
            segments = await self._segments(key)
            if segments is not None:
                async for chunk in self._read_segments(segments, offset, end, chunk_size):
                    yield chunk
            return
        async for chunk in self._bucket.stream(full, offset, end, chunk_size, response):
            yield chunk

    async def _read_segments(
        self, segments: Segments, offset: int, end: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        position = 0  # where the current segment starts in the whole
        for piece in segments.pieces():
            start = max(offset, position) - position
            stop = piece.size if end is None else min(end - position, piece.size)
            if start < stop:
                async for chunk in self._bucket.stream(piece.key, start, stop, chunk_size):
                    yield chunk
            position += piece.size

    async def _segments(self, key: str) -> Segments | None:
        """The manifest of a segmented object, or None for a plain one."""
        full = self._full(key)
        try:
            response = await self._bucket.get(full)
        except PathNotFound:
            raise PathNotFound(key) from None
        if not is_segmented(response):
            response["Body"].close()
            return None
        return Segments.decode(sidecar(self._root, key), await self._bucket.read_all(full, response))

    async def writer(self, key: str, append: bool = False) -> ObjectWriter | AppendWriter:
        full = self._full(key)
        if not append:
            return ObjectWriter(self._bucket, full, self._chunk_size)
        writer = AppendWriter(self._bucket, full, sidecar(self._root, key), self._chunk_size)
        await writer.open()
        return writer

    async def stat(self, key: str) -> FileInfo:
        full = self._full(key)
        try:
            head = await self._bucket.call("head_object", Key=full)
        except PathNotFound:
            page = await self._bucket.call("list_objects_v2", Prefix=full + "/", MaxKeys=1)
            contents = page.get("Contents")
            if not contents:
                raise PathNotFound(key) from None
            return FileInfo(key=key, size=0, modified=contents[0]["LastModified"].timestamp(), is_dir=True)
        size = int(head["Metadata"][SIZE]) if is_segmented(head) else int(head["ContentLength"])
        return FileInfo(key=key, size=size, modified=head["LastModified"].timestamp())

    async def list(self, prefix: str, after: str | None = None, limit: int | None = None) -> list[str]:
        base = self._full(prefix) + "/" if prefix else self._root
        if limit is not None and limit <= 0:
            return []
        names: set[str] = set()
        params: dict[str, Any] = {"Prefix": base, "Delimiter": "/", "MaxKeys": 1000}
        if after is not None:
            params["StartAfter"] = base + after  # every name above `after` sorts after this key too
        while True:
            page = await self._bucket.call("list_objects_v2", **params)
            entries = [c["Key"] for c in page.get("Contents", [])] + [
                p["Prefix"] for p in page.get("CommonPrefixes", [])
            ]
            for entry in entries:
                name = entry[len(base) :].rstrip("/")
                if name and not name.startswith("~") and (after is None or name > after):
                    names.add(name)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
            if limit is not None and len(names) >= limit and max(entries) >= _horizon(base, sorted(names)[limit - 1]):
                break
            params["ContinuationToken"] = token
        result = sorted(names)
        return result if limit is None else result[:limit]

    async def move(self, src: str, dst: str) -> None:
        source, target = self._full(src), self._full(dst)
        try:
            head = await self._bucket.call("head_object", Key=source)
        except PathNotFound:
            raise PathNotFound(src) from None
        if source == target:
            return
        if is_segmented(head):
            segments = await self._segments(src)
            assert segments is not None
            await self._bucket.concat(segments.pieces(), target)
            await self._bucket.delete_keys([source, *(piece.key for piece in segments.pieces())])
        else:
            await self._bucket.copy(source, target, int(head["ContentLength"]))
            await self._bucket.delete_keys([source])

    async def delete(self, key: str) -> None:
        full, side = self._full(key), sidecar(self._root, key)
        below = full + "/"
        await self._bucket.abort_uploads(full, keep=lambda k: k != full and not k.startswith(below))
        await self._bucket.abort_uploads(side)
        keys = [full, *await self._bucket.keys(below), *await self._bucket.keys(side)]
        await self._bucket.delete_keys(keys)

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        """A presigned URL valid for `redirectexpiry` seconds; Range headers work on it. For plain
        objects (blobs), not for uploads still growing as segmented objects."""
        operation = {"GET": "get_object", "HEAD": "head_object"}.get(method)
        if operation is None:
            return None
        params = {"Bucket": self._bucket.name, "Key": self._full(key)}
        url: str = await self._bucket.run(
            self._bucket.client.generate_presigned_url, operation, Params=params, ExpiresIn=self._redirect_expiry
        )
        return url

    async def close(self) -> None:
        try:
            self._bucket.client.close()
        except AttributeError:
            pass


def _horizon(base: str, name: str) -> str:
    """How far an S3 listing must have got before `name` is known to be among the smallest names.

    S3 sorts keys, and a directory `a` lists as `a/`, which sorts after `a-b` and `a.b` although the
    name `a` sorts before them. A directory name that is such a prefix of `name` may still follow.
    """
    prefixes = [name[:i] for i in range(1, len(name)) if name[i] in "-."]
    return max((f"{base}{p}/" for p in prefixes), default="")


def _add_content_md5(request: Any, **kwargs: Any) -> None:
    # DeleteObjects requires an integrity header. botocore now sends a CRC32 there, which older
    # MinIO and Ceph RGW releases reject; Content-MD5 is accepted everywhere.
    body = request.body
    if isinstance(body, bytes) and "Content-MD5" not in request.headers:
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        request.headers["Content-MD5"] = base64.b64encode(digest).decode()


__all__ = ["BackendError", "S3Backend"]
