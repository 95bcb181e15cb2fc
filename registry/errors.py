"""The registry's errors: the OCI distribution codes as data (code -> HTTP status -> message, spec:
Error Codes), and the one table that turns any exception into one of them."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from starlette.exceptions import HTTPException

from auth.base import AuthError
from registry.digest import InvalidDigest
from storage_backends import InvalidOffset, InvalidPath, PathNotFound, StorageError


class ErrorCode(Enum):
    """Member names are the codes on the wire; the value is the usual status and the spec's message."""

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
    # Codes that are not in the spec's table but that distribution sends and clients understand.
    TAG_INVALID = (400, "manifest tag did not match URI")
    PAGINATION_NUMBER_INVALID = (400, "invalid number of results requested")
    UNKNOWN = (500, "unknown error")
    UNAVAILABLE = (503, "service unavailable")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]


class RegistryError(Exception):
    """An answer with the spec's error body. `status` overrides the code's usual one where the
    spec asks for another (416 for an unsatisfiable range, 413 for a manifest too large)."""

    def __init__(
        self,
        code: ErrorCode,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
        message: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message or code.message)
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.message = message or code.message
        self.status = status or code.status

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code.name, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}


def registry_error(exc: Exception, missing: ErrorCode = ErrorCode.NAME_UNKNOWN) -> RegistryError:
    """The one mapping from an exception to the error the client sees.

    `missing` is what the route answers when content vanishes under it (`PathNotFound` escaping
    the store means a concurrent delete won the race): a blob route says BLOB_UNKNOWN, a manifest
    route MANIFEST_UNKNOWN, and so on (`registry/routes.py`). Anything unforeseen is UNKNOWN (500).
    """
    match exc:
        case RegistryError():
            return exc
        case AuthError():
            return RegistryError(ErrorCode[exc.code], exc.detail, exc.headers, exc.message, exc.status)
        case HTTPException(status_code=404):
            return RegistryError(ErrorCode.UNSUPPORTED, message="no such endpoint", status=404)
        case HTTPException(status_code=405):
            return RegistryError(ErrorCode.UNSUPPORTED, exc.detail, exc.headers)
        case HTTPException() if exc.status_code < 500:
            return RegistryError(ErrorCode.UNSUPPORTED, exc.detail, exc.headers, status=exc.status_code)
        case InvalidDigest():
            return RegistryError(ErrorCode.DIGEST_INVALID, detail=str(exc))
        case PathNotFound():
            return RegistryError(missing, message="content vanished during the request")
        case InvalidPath():
            return RegistryError(ErrorCode.NAME_INVALID, detail="invalid path component")
        case InvalidOffset():
            return RegistryError(ErrorCode.BLOB_UPLOAD_INVALID, message="offset beyond the content", status=416)
        case StorageError():
            return RegistryError(ErrorCode.UNAVAILABLE, message="storage backend unavailable")
        case _:
            return RegistryError(ErrorCode.UNKNOWN)
