"""The registry's errors: an answer with one of the distribution codes (`oci.errorcodes`), and the
one table that turns any exception into one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException

from auth.base import AuthError
from oci.digest import InvalidDigest
from oci.errorcodes import ErrorCode
from oci.manifests import ManifestError, Problem
from storage_backends import InvalidOffset, InvalidPath, PathNotFound, StorageError

__all__ = ["ErrorCode", "RegistryError", "registry_error"]


class RegistryError(Exception):
    """An answer with the spec's error body. `status` overrides the code's usual one where the
    spec asks for another (416 for an unsatisfiable range, 413 for a manifest too large).
    `policy` names the governance rule that refused the request (`immutable`, `quota`): the audit
    log records such answers as denials whatever their status."""

    def __init__(
        self,
        code: ErrorCode,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
        message: str | None = None,
        status: int | None = None,
        policy: str | None = None,
    ) -> None:
        super().__init__(message or code.message)
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.message = message or code.message
        self.status = status or code.status
        self.policy = policy

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code.name, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}


# The protocol package (oci/) knows no HTTP: its errors become these codes when a request caused them.
_MANIFEST_PROBLEMS = {
    Problem.INVALID: (ErrorCode.MANIFEST_INVALID, "manifest invalid"),
    Problem.DIGEST_INVALID: (ErrorCode.DIGEST_INVALID, "invalid digest in the manifest"),
}


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
            return RegistryError(exc.code, exc.detail, exc.headers, exc.message, exc.status)
        case HTTPException(status_code=404):
            return RegistryError(ErrorCode.UNSUPPORTED, message="no such endpoint", status=404)
        case HTTPException(status_code=405):
            return RegistryError(ErrorCode.UNSUPPORTED, exc.detail, exc.headers)
        case HTTPException() if exc.status_code < 500:
            return RegistryError(ErrorCode.UNSUPPORTED, exc.detail, exc.headers, status=exc.status_code)
        case InvalidDigest():
            return RegistryError(ErrorCode.DIGEST_INVALID, detail=str(exc), message="invalid digest")
        case ManifestError():
            code, message = _MANIFEST_PROBLEMS[exc.problem]
            return RegistryError(code, detail=exc.detail, message=f"{message}: {exc.detail}")
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
