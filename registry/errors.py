"""OCI distribution error codes as data: code -> HTTP status -> message (spec: Error Codes)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class ErrorCode(Enum):
    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (404, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (405, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    # Codes that are not in the spec's table but that distribution uses and clients understand.
    RANGE_INVALID = (416, "invalid content range")
    MANIFEST_TOO_LARGE = (413, "manifest too large")
    TAG_INVALID = (400, "manifest tag did not match URI")
    PAGINATION_NUMBER_INVALID = (400, "invalid number of results requested")
    NOT_FOUND = (404, "no such endpoint")
    UNKNOWN = (500, "unknown error")
    UNAVAILABLE = (503, "service unavailable")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]


# The code a few of our own entries carry on the wire: the spec's names for them.
_WIRE_NAMES = {
    ErrorCode.MANIFEST_TOO_LARGE: "SIZE_INVALID",
    ErrorCode.RANGE_INVALID: "BLOB_UPLOAD_INVALID",
    ErrorCode.NOT_FOUND: "UNSUPPORTED",
}


class RegistryError(Exception):
    def __init__(
        self,
        code: ErrorCode,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(message or code.message)
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.message = message or code.message

    @property
    def status(self) -> int:
        return self.code.status

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": _WIRE_NAMES.get(self.code, self.code.name), "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}
