"""OCI distribution error codes as data: code -> HTTP status -> message (spec: Error Codes)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from oci.digest import InvalidDigest
from oci.manifests import ManifestError, Problem


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


# The protocol package (oci/) knows no HTTP: its errors become these codes when a request caused them.
_MANIFEST_PROBLEMS = {
    Problem.INVALID: ErrorCode.MANIFEST_INVALID,
    Problem.DIGEST_INVALID: ErrorCode.DIGEST_INVALID,
}


def protocol_error(exc: ManifestError | InvalidDigest) -> RegistryError:
    """The registry's answer to a malformed manifest or digest from the protocol package."""
    if isinstance(exc, InvalidDigest):
        return RegistryError(ErrorCode.DIGEST_INVALID, detail=str(exc))
    code = _MANIFEST_PROBLEMS[exc.problem]
    message = f"{code.message}: {exc.detail}" if code is ErrorCode.MANIFEST_INVALID else None
    return RegistryError(code, detail=exc.detail, message=message)
