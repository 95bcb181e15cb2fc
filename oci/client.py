"""An async client for any OCI distribution registry (distribution-spec: Pull and Push), on httpx.

It speaks HTTPS, and plain HTTP to registries on the loopback interface or ones the caller marks insecure
(trying HTTPS first, without certificate checks, as Docker does for insecure registries). It answers both
`Basic` and `Bearer` challenges (auth-token.md): a bearer token is fetched per repository scope from the
challenge's realm, with Basic credentials when it has them, and refetched once when a request is refused.
Every manifest and blob it returns has been checked against its digest. Pushing uploads a blob in one
monolithic PUT after the POST that opens the session, or mounts it from another repository of the same
registry (`?mount=&from=`, which a registry may answer with a new upload session instead).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import httpx
import orjson

from oci import mediatypes as mt
from oci.digest import Digest, InvalidDigest, new_hasher
from oci.reference import is_loopback

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
_CHUNK = 1 << 20
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_DEFAULT_TOKEN_TTL = 60.0

ProgressCallback = Callable[[int], None]


class ClientError(Exception):
    pass


class AuthenticationError(ClientError):
    pass


class NotFound(ClientError):
    pass


class DigestMismatch(ClientError):
    pass


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower case
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    media_type: str
    digest: str


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a `WWW-Authenticate` header (RFC 7235)."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def manifest_media_type(data: bytes, content_type: str | None) -> str:
    """A manifest's media type: its own `mediaType` field, else the response's Content-Type, else its shape."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ClientError("manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ClientError("manifest is not a JSON object")
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    content_type = (content_type or "").split(";")[0].strip()
    if content_type in mt.MANIFESTS:
        return content_type
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc and "layers" in doc:
        return mt.OCI_MANIFEST
    return content_type or "application/octet-stream"


def verify_digest(data: bytes, expected: str) -> str:
    want = Digest.parse(expected)
    got = Digest.of(data, want.algorithm)
    if got != want:
        raise DigestMismatch(f"digest mismatch: expected {want}, content is {got}")
    return str(got)


class RegistryClient:
    def __init__(
        self,
        host: str,
        credentials: Credentials | None = None,
        insecure: bool = False,
        timeout: float = 60.0,
        user_agent: str = "dockyard",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.host = host
        self.credentials = credentials
        self.plain_http_allowed = insecure or is_loopback(host)
        self._http = httpx.AsyncClient(
            transport=transport,
            verify=not self.plain_http_allowed,
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"User-Agent": user_agent},
            follow_redirects=True,
        )
        self._base: str | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- endpoint and authentication ---------------------------------------------------------------------------

    async def ping(self) -> None:
        """`GET /v2/`: find the scheme that answers and remember the registry's auth challenge."""
        if self._base is not None:
            return
        schemes = ("https", "http") if self.plain_http_allowed else ("https",)
        last: Exception | None = None
        for scheme in schemes:
            base = f"{scheme}://{self.host}"
            try:
                response = await self._http.get(f"{base}/v2/")
            except httpx.TransportError as exc:
                last = exc
                continue
            if response.status_code == 401:
                self._challenge = parse_challenge(response.headers.get("www-authenticate", ""))
            elif response.status_code != 200:
                raise ClientError(
                    f"{self.host} does not look like a registry: GET /v2/ answered {response.status_code}"
                )
            self._base = base
            return
        hint = "" if self.plain_http_allowed else " (use --insecure for a registry without TLS)"
        raise ClientError(f"cannot reach registry {self.host}: {last}{hint}")

    async def login(self) -> None:
        """Check the credentials against the registry, the way `docker login` does."""
        await self.ping()
        if self._challenge is None:
            return
        if self._challenge.scheme == "bearer":
            await self._fetch_token(None)
            return
        response = await self._http.get(f"{self._base}/v2/", headers=self._basic_header())
        if response.status_code != 200:
            raise AuthenticationError(f"login to {self.host} failed: {_error_text(response)}")

    def _basic_header(self) -> dict[str, str]:
        if self.credentials is None:
            return {}
        auth = httpx.BasicAuth(self.credentials.username, self.credentials.password)
        request = httpx.Request("GET", "http://x/")
        return {"Authorization": next(auth.auth_flow(request)).headers["Authorization"]}

    async def _auth_header(self, scope: str) -> dict[str, str]:
        if self._challenge is None:
            return {}
        if self._challenge.scheme == "basic":
            return self._basic_header()
        if self._challenge.scheme == "bearer":
            return {"Authorization": f"Bearer {await self._token(scope)}"}
        return {}

    async def _token(self, scope: str) -> str:
        async with self._token_lock:
            cached = self._tokens.get(scope)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            token, ttl = await self._fetch_token(scope)
            # Renew a little early so a token never expires between being read and being sent.
            self._tokens[scope] = (token, time.monotonic() + max(ttl - 10.0, 1.0))
            return token

    async def _fetch_token(self, scope: str | None) -> tuple[str, float]:
        assert self._challenge is not None
        realm = self._challenge.params.get("realm")
        if not realm:
            raise ClientError(f"{self.host} sent a Bearer challenge without a realm")
        params: dict[str, str | list[str]] = {"client_id": "dockyard"}
        if "service" in self._challenge.params:
            params["service"] = self._challenge.params["service"]
        if scope:
            # Several scopes (a cross-repository mount needs push here and pull there) are several parameters.
            params["scope"] = scope.split(" ")
        if self.credentials is not None:
            params["account"] = self.credentials.username
        try:
            response = await self._http.get(realm, params=params, headers=self._basic_header())
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach the token service {realm}: {exc}") from exc
        if response.status_code in (401, 403):
            raise AuthenticationError(f"{self.host}: unauthorized: {_error_text(response)}")
        if response.status_code != 200:
            raise ClientError(f"token service {realm} answered {response.status_code}: {_error_text(response)}")
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ClientError(f"token service {realm} returned no token")
        ttl = body.get("expires_in")
        return token, float(ttl) if isinstance(ttl, int | float) and ttl > 0 else _DEFAULT_TOKEN_TTL

    async def _send(
        self,
        method: str,
        path: str,
        scope: str,
        headers: dict[str, str],
        stream: bool,
        content: Callable[[], bytes | AsyncIterator[bytes]] | None = None,
    ) -> httpx.Response:
        """One request with authentication; a 401 refreshes the challenge and token and retries once.
        `path` is below the registry's base URL, or a whole URL (an upload's Location); `content` makes
        the body afresh for each attempt."""
        await self.ping()
        url = path if path.startswith(("http://", "https://")) else f"{self._base}{path}"
        for attempt in (0, 1):
            request = self._http.build_request(
                method,
                url,
                headers=headers | await self._auth_header(scope),
                content=content() if content is not None else None,
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                raise ClientError(f"{method} {path} on {self.host} failed: {exc}") from exc
            if response.status_code != 401 or attempt == 1:
                return response
            await response.aclose()
            challenge = parse_challenge(response.headers.get("www-authenticate", ""))
            if challenge is None:
                return response
            self._challenge = challenge
            self._tokens.pop(scope, None)
        raise AssertionError("unreachable")

    async def open(
        self, method: str, repository: str, path: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """`<method> /v2/<repository>/<path>` with authentication, its body not yet read: for callers that
        handle statuses and stream bodies themselves (the registry's pull-through cache). The caller closes it."""
        return await self._send(method, f"/v2/{repository}/{path}", _scope(repository), headers or {}, True)

    # --- content -----------------------------------------------------------------------------------------------

    async def get_manifest(self, repository: str, reference: str) -> Fetched:
        """A manifest or index by tag or digest, checked against the digest asked for (or the one announced)."""
        headers = {"Accept": ", ".join(mt.ACCEPT_ALL)}
        response = await self._send("GET", f"/v2/{repository}/manifests/{reference}", _scope(repository), headers, True)
        try:
            _raise_for_status(response, f"manifest {repository}:{reference}")
            data = await _read_capped(response, MAX_MANIFEST_SIZE)
        finally:
            await response.aclose()
        expected = reference if ":" in reference else response.headers.get("docker-content-digest")
        if expected:
            try:
                digest = verify_digest(data, expected)
            except InvalidDigest as exc:
                raise ClientError(f"registry announced an invalid digest: {exc}") from None
        else:
            digest = str(Digest.of(data))
        return Fetched(data, manifest_media_type(data, response.headers.get("content-type")), digest)

    async def get_blob(self, repository: str, digest: str, limit: int = MAX_MANIFEST_SIZE) -> bytes:
        """A small blob (a config) in memory, verified."""
        response = await self._send("GET", f"/v2/{repository}/blobs/{digest}", _scope(repository), {}, True)
        try:
            _raise_for_status(response, f"blob {digest}")
            data = await _read_capped(response, limit)
        finally:
            await response.aclose()
        verify_digest(data, digest)
        return data

    async def download_blob(
        self,
        repository: str,
        digest: str,
        out: BinaryIO,
        size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Stream a blob into `out`, checking its size and digest; returns the bytes written. On a mismatch
        `out` holds unverified data and the caller must discard it."""
        want = Digest.parse(digest)
        hasher = new_hasher(want.algorithm)
        written = 0
        response = await self._send("GET", f"/v2/{repository}/blobs/{digest}", _scope(repository), {}, True)
        try:
            _raise_for_status(response, f"blob {digest}")
            async for chunk in response.aiter_bytes(_CHUNK):
                written += len(chunk)
                if size is not None and written > size:
                    raise DigestMismatch(f"blob {digest} is larger than the {size} bytes its descriptor says")
                hasher.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        except httpx.TransportError as exc:
            raise ClientError(f"download of {digest} failed: {exc}") from exc
        finally:
            await response.aclose()
        if size is not None and written != size:
            raise DigestMismatch(f"blob {digest} has {written} bytes, its descriptor says {size}")
        got = f"{want.algorithm}:{hasher.hexdigest()}"
        if got != str(want):
            raise DigestMismatch(f"digest mismatch: expected {want}, content is {got}")
        return written

    # --- pushing -----------------------------------------------------------------------------------------------

    async def blob_exists(self, repository: str, digest: str) -> bool:
        """`HEAD /v2/<name>/blobs/<digest>`: whether the repository already has the blob."""
        response = await self._send("HEAD", f"/v2/{repository}/blobs/{digest}", _push_scope(repository), {}, False)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        _raise_for_push(response, f"blob {digest}")
        return False

    async def mount_blob(self, repository: str, digest: str, source: str) -> tuple[bool, str | None]:
        """Ask for `digest` to be mounted from the repository `source`: (True, None) when it was, or
        (False, location) of the upload session the registry opened instead."""
        response = await self._send(
            "POST",
            f"/v2/{repository}/blobs/uploads/?mount={digest}&from={source}",
            _push_scope(repository, source),
            {"Content-Length": "0"},
            False,
        )
        if response.status_code == 201:
            return True, None
        if response.status_code == 202:
            return False, self._location(response)
        _raise_for_push(response, f"mount of {digest} from {source}")
        return False, None

    async def start_upload(self, repository: str) -> str:
        response = await self._send(
            "POST", f"/v2/{repository}/blobs/uploads/", _push_scope(repository), {"Content-Length": "0"}, False
        )
        if response.status_code != 202:
            _raise_for_push(response, "blob upload")
        return self._location(response)

    async def upload_blob(
        self,
        repository: str,
        location: str,
        digest: str,
        source: BinaryIO,
        size: int,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Finish the upload session at `location` with the whole blob, read from the seekable `source`."""
        start = source.tell()

        def body() -> AsyncIterator[bytes]:
            source.seek(start)
            return _file_chunks(source, progress)

        separator = "&" if "?" in location else "?"
        response = await self._send(
            "PUT",
            f"{location}{separator}digest={digest}",
            _push_scope(repository),
            {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            False,
            body,
        )
        if response.status_code != 201:
            _raise_for_push(response, f"upload of {digest}")

    async def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Store a manifest under a tag (or its digest); returns its digest."""
        response = await self._send(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            _push_scope(repository),
            {"Content-Type": media_type},
            False,
            lambda: data,
        )
        if response.status_code not in (200, 201):
            _raise_for_push(response, f"manifest {repository}:{reference}")
        return response.headers.get("docker-content-digest") or str(Digest.of(data))

    def _location(self, response: httpx.Response) -> str:
        location = response.headers.get("location")
        if not location:
            raise ClientError(f"{self.host} opened an upload without a Location")
        return str(httpx.URL(f"{self._base}/").join(location))


async def _file_chunks(source: BinaryIO, progress: ProgressCallback | None) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(source.read, _CHUNK):
        if progress is not None:
            progress(len(chunk))
        yield chunk


def _scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push_scope(repository: str, mount_from: str | None = None) -> str:
    scope = f"repository:{repository}:pull,push"
    return f"{scope} repository:{mount_from}:pull" if mount_from else scope


def _raise_for_push(response: httpx.Response, what: str) -> None:
    if response.status_code in (401, 403):
        raise AuthenticationError(f"pushing {what}: denied: {_error_text(response)}")
    raise ClientError(f"{what}: registry answered {response.status_code}: {_error_text(response)}")


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.status_code == 200:
        return
    if response.status_code == 404:
        raise NotFound(f"{what} not found")
    if response.status_code == 401:
        raise AuthenticationError(f"pulling {what}: unauthorized: authentication required")
    if response.status_code == 403:
        raise AuthenticationError(f"pulling {what}: denied: requested access to the resource is denied")
    raise ClientError(f"{what}: registry answered {response.status_code}")


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limit:
            raise ClientError(f"response larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _error_text(response: httpx.Response) -> str:
    """The first OCI error message of a response, or its status line."""
    try:
        errors: Any = response.json().get("errors")
        first = errors[0]
        return f"{first.get('code', '').lower()}: {first.get('message', '')}".strip(": ")
    except Exception:
        return f"{response.status_code} {response.reason_phrase}"
