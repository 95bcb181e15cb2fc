"""Request parsing shared by the handlers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from registry.errors import ErrorCode, RegistryError

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(\d+|\*))?$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise RegistryError(ErrorCode.SIZE_INVALID, detail="invalid Content-Length") from None
    if length < 0:
        raise RegistryError(ErrorCode.SIZE_INVALID, detail="invalid Content-Length")
    return length


def content_range(request: Request) -> tuple[int, int] | None:
    """`Content-Range: <start>-<end>` of a chunk (the spec's form, also with docker's `bytes ` prefix)."""
    value = request.headers.get("content-range")
    if value is None:
        return None
    match = _CONTENT_RANGE.match(value.strip())
    if not match:
        raise RegistryError(ErrorCode.BLOB_UPLOAD_INVALID, detail=f"invalid Content-Range {value!r}", status=416)
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RegistryError(ErrorCode.BLOB_UPLOAD_INVALID, detail=f"invalid Content-Range {value!r}", status=416)
    return start, end


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single `Range: bytes=a-b` request resolved against `size` (inclusive end), or None for all.

    Raises BLOB_UPLOAD_INVALID with 416 when it cannot be satisfied; multiple ranges are served whole.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise _unsatisfiable(size)
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or end < start:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RegistryError:
    return RegistryError(
        ErrorCode.BLOB_UPLOAD_INVALID,
        headers={"Content-Range": f"bytes */{size}"},
        message="requested range not satisfiable",
        status=416,
    )


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that goes away mid-body aborts the operation."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise RegistryError(ErrorCode.BLOB_UPLOAD_INVALID, detail="client disconnected mid-body") from None


async def read_limited(request: Request, limit: int) -> bytes:
    length = content_length(request)
    if length is not None and length > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    total = 0
    async for chunk in body_stream(request):
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _too_large(limit: int) -> RegistryError:
    return RegistryError(ErrorCode.SIZE_INVALID, detail={"limit": limit}, message="manifest too large", status=413)


def query_int(request: Request, key: str) -> int | None:
    value = request.query_params.get(key)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise RegistryError(ErrorCode.PAGINATION_NUMBER_INVALID, detail={key: value}) from None
    if number < 0:
        raise RegistryError(ErrorCode.PAGINATION_NUMBER_INVALID, detail={key: value})
    return number
