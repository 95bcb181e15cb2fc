"""The error codes of the distribution API as data: code -> usual HTTP status -> message (spec:
Error Codes). The server answers with them (`registry/`, `auth/`) and clients read them."""

from __future__ import annotations

from enum import Enum


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
