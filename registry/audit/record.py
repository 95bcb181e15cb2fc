"""What the audit log says of a finished request: a record, or None when there is nothing to say.

Audited: a push (a manifest put, a blob upload committed), a delete (a manifest, a tag, a blob), a
cross-repository mount, a login (a token issued for a user, a successful `GET /v2/` with Basic
credentials as `docker login` sends it, a login on the UI's form) and every denied request (401,
403, a failed login's 429, a governance refusal such as an immutable tag). A pull is not audited
unless it is denied; neither is the unauthenticated `GET /v2/` every client starts with to learn
how to log in. The answer's status decides: a push that failed for another reason says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import Scope

from auth.base import LOGIN_KEY, SUBJECT_KEY
from auth.credentials import Basic, MalformedCredentials, client_address, parse_authorization
from auth.rules import ROBOT_PREFIX
from registry.errorhandler import ERROR_KEY

# A handler outside the /v2/ routes sets this to the record's fields itself: the UI's delete with
# `action` (and `user`, which the request scope does not name there), its login form with `via`.
AUDIT_KEY = "dockyard.audit"
# Set on a record whose blob size the middleware looks up after the answer (it is not in the request).
SIZE_WANTED = "_size_wanted"

_BASE = "/v2/"
_MANIFEST = "/v2/{name}/manifests/{reference}"
_BLOB = "/v2/{name}/blobs/{digest}"
_UPLOAD_START = "/v2/{name}/blobs/uploads/"
_UPLOAD = "/v2/{name}/blobs/uploads/{upload_id}"
_DENIED_STATUSES = frozenset({401, 403})
_READS = frozenset({"GET", "HEAD"})
# Free text is cut short, and a push's tags to the first few: a line stays under PIPE_BUF, so even
# a pipe never splits it.
_TEXT_LIMIT = 256
_TAGS_LIMIT = 8


def describe(
    scope: Scope, status: int, response_headers: Iterable[tuple[bytes, bytes]], trust_forwarded: bool
) -> dict[str, Any] | None:
    """The audit record of the request `scope` answered with `status`, or None."""
    method = scope.get("method", "")
    route = scope.get("dockyard.route")
    login = scope.get(LOGIN_KEY)
    if status < 400 and method in _READS and login is None and route != _BASE:
        return None  # a pull, the fast way out
    headers = Headers(scope=scope)
    error = scope.get(ERROR_KEY)
    explicit: Mapping[str, Any] = scope.get(AUDIT_KEY) or {}
    policy = getattr(error, "policy", None)
    what: dict[str, Any]
    # A 429 is a denial when the failed-login limits answered it, before the caller got through
    # (after, it is a mirror's upstream limiting this registry).
    limited = status == 429 and (login is not None or SUBJECT_KEY not in scope)
    if status in _DENIED_STATUSES or policy is not None or limited:
        if status == 401 and route == _BASE and "authorization" not in headers:
            return None  # the handshake: how a client learns where to log in
        action = "denied"
        what = _denied(scope, error, policy, login)
    elif status >= 400 or status < 200:
        return None
    elif login is not None:
        if not login:
            return None  # an anonymous token: no one logged in
        action, what = "login", {"via": explicit.get("via", "token")}
    elif "action" in explicit:
        what = dict(explicit)
        action = str(what.pop("action"))
    elif route == _BASE and method == "GET" and _basic_user(headers) is not None:
        action, what = "login", {"via": "basic"}
    else:
        found = _api_write(scope, method, route, status, headers, _header(response_headers, b"docker-content-digest"))
        if found is None:
            return None
        action, what = found
    vouched = what.pop("user", None) or scope.get(SUBJECT_KEY)  # by a password, a token or a UI session
    user = vouched or login or _basic_user(headers)
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "action": action,
        "status": status,
        "user": _cut(user),
        "actor": _actor(user),
        "authenticated": bool(vouched),
        "address": client_address(HTTPConnection(scope), trust_forwarded),
        "useragent": _cut(headers.get("user-agent")),
        "method": method,
        "path": _cut(scope.get("path")),
        "request_id": scope.get("dockyard.request_id"),
    }
    record.update((k, v) for k, v in what.items() if v is not None)
    return record


def _api_write(
    scope: Scope, method: str, route: str | None, status: int, headers: Headers, digest: str | None
) -> tuple[str, dict[str, Any]] | None:
    name = scope.get("dockyard.repository") or None
    params: Mapping[str, str] = scope.get("path_params") or {}
    if method == "PUT" and route == _MANIFEST:
        reference = params.get("reference", "")
        tags = ([] if ":" in reference else [reference]) + _query(scope).get("tag", [])
        return "push", {
            "repository": name,
            "reference": _cut(reference),
            "tags": [_cut(tag) for tag in tags[:_TAGS_LIMIT]] or None,
            "digest": digest,
            "mediatype": _cut(headers.get("content-type")),
            "size": _int(headers.get("content-length")),
        }
    if (method == "PUT" and route == _UPLOAD) or (method == "POST" and route == _UPLOAD_START and status == 201):
        query = _query(scope)
        mount, source = query.get("mount"), query.get("from")
        if method == "POST" and mount and source:
            return "mount", {"repository": name, "from": _cut(source[0]), "digest": digest, SIZE_WANTED: True}
        return "push", {"repository": name, "digest": digest, "mediatype": "blob", SIZE_WANTED: True}
    if method == "DELETE" and route == _MANIFEST:
        reference = params.get("reference", "")
        if ":" in reference:
            return "delete", {"repository": name, "reference": reference, "digest": reference}
        return "delete", {"repository": name, "reference": _cut(reference), "tags": [_cut(reference)]}
    if method == "DELETE" and route == _BLOB:
        return "delete", {"repository": name, "digest": params.get("digest"), "mediatype": "blob"}
    return None


def _denied(scope: Scope, error: Any, policy: str | None, login: str | None) -> dict[str, Any]:
    params: Mapping[str, str] = scope.get("path_params") or {}
    reference = params.get("reference") or params.get("digest")
    attempted = "login" if login is not None else scope.get("dockyard.action")
    what: dict[str, Any] = {
        "attempted": attempted,
        "repository": scope.get("dockyard.repository") or None,
        "reference": _cut(reference),
        "policy": policy,
    }
    if error is not None:
        what["error"] = {"code": error.code.name, "message": _cut(error.message)}
    return what


def _basic_user(headers: Headers) -> str | None:
    try:
        creds = parse_authorization(headers.get("authorization"))
    except MalformedCredentials:
        return None
    return creds.user if isinstance(creds, Basic) else None


def _actor(user: str | None) -> str:
    if not user:
        return "anonymous"
    return "robot" if user.startswith(ROBOT_PREFIX) else "user"


def _query(scope: Scope) -> dict[str, list[str]]:
    raw: bytes = scope.get("query_string", b"")
    return parse_qs(raw.decode("latin-1"), keep_blank_values=False)


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= _TEXT_LIMIT:
        return text
    return text[:_TEXT_LIMIT] + "..."
