"""The registry client's protocol logic over httpx's mock transport: scheme choice, Basic and bearer
handshakes, and digest and size checks. Real registries are exercised in tests/runtime_images."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Callable

import httpx
import pytest

from oci.client import (
    AuthenticationError,
    ClientError,
    Credentials,
    DigestMismatch,
    NotFound,
    RegistryClient,
    manifest_media_type,
    parse_challenge,
)

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
BLOB = b"layer bytes" * 1000
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
Handler = Callable[[httpx.Request], httpx.Response]


def _client(host: str, handler: Handler, **kwargs: object) -> RegistryClient:
    return RegistryClient(host, transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def _no_tls(handler: Handler) -> Handler:
    def wrapped(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            raise httpx.ConnectError("TLS handshake failed", request=request)
        return handler(request)

    return wrapped


def _open_registry(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/v2/":
        return httpx.Response(200, json={})
    if request.url.path.endswith("/manifests/v1"):
        return httpx.Response(200, content=MANIFEST, headers={"Docker-Content-Digest": MANIFEST_DIGEST})
    if request.url.path.endswith(f"/blobs/{BLOB_DIGEST}"):
        return httpx.Response(200, content=BLOB)
    return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})


def test_parse_challenge() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"'
    )
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
    }
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and basic.scheme == "basic"
    assert parse_challenge("") is None


def test_manifest_media_type() -> None:
    assert manifest_media_type(MANIFEST, "text/plain") == "application/vnd.oci.image.manifest.v1+json"
    untyped = json.dumps({"manifests": []}).encode()
    assert manifest_media_type(untyped, "application/vnd.docker.distribution.manifest.list.v2+json").endswith(
        "list.v2+json"
    )
    assert manifest_media_type(untyped, None) == "application/vnd.oci.image.index.v1+json"
    with pytest.raises(ClientError):
        manifest_media_type(b"[]", None)


async def test_loopback_falls_back_to_plain_http() -> None:
    async with _client("127.0.0.1:5000", _no_tls(_open_registry)) as client:
        fetched = await client.get_manifest("demo/web", "v1")
    assert fetched.digest == MANIFEST_DIGEST
    assert fetched.media_type == "application/vnd.oci.image.manifest.v1+json"


async def test_other_hosts_need_tls_unless_insecure() -> None:
    async with _client("registry.example.com", _no_tls(_open_registry)) as client:
        with pytest.raises(ClientError, match="--insecure"):
            await client.get_manifest("demo/web", "v1")
    async with _client("registry.example.com", _no_tls(_open_registry), insecure=True) as client:
        assert (await client.get_manifest("demo/web", "v1")).digest == MANIFEST_DIGEST


async def test_tls_preferred_when_it_answers() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.scheme)
        return _open_registry(request)

    async with _client("localhost:5000", handler) as client:
        await client.get_manifest("demo/web", "v1")
    assert set(seen) == {"https"}


async def test_manifest_digest_checks() -> None:
    def lying(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(200, content=MANIFEST + b" ", headers={"Docker-Content-Digest": MANIFEST_DIGEST})

    async with _client("127.0.0.1:1", lying) as client:
        with pytest.raises(DigestMismatch):
            await client.get_manifest("demo/web", "v1")
        with pytest.raises(DigestMismatch):
            await client.get_manifest("demo/web", MANIFEST_DIGEST)


async def test_blob_download_checks_digest_and_size() -> None:
    reported: list[int] = []
    async with _client("127.0.0.1:1", _open_registry) as client:
        out = io.BytesIO()
        assert await client.download_blob("demo/web", BLOB_DIGEST, out, len(BLOB), reported.append) == len(BLOB)
        assert out.getvalue() == BLOB and sum(reported) == len(BLOB)
        with pytest.raises(DigestMismatch, match="descriptor says"):
            await client.download_blob("demo/web", BLOB_DIGEST, io.BytesIO(), len(BLOB) - 1)
        with pytest.raises(DigestMismatch, match="descriptor says"):
            await client.download_blob("demo/web", BLOB_DIGEST, io.BytesIO(), len(BLOB) + 1)
        wrong = "sha256:" + "0" * 64
        with pytest.raises(NotFound):
            await client.download_blob("demo/web", wrong, io.BytesIO())
        with pytest.raises(NotFound):
            await client.get_manifest("demo/web", "missing")


def _basic_registry(request: httpx.Request) -> httpx.Response:
    expected = "Basic " + base64.b64encode(b"alice:pw").decode()
    if request.headers.get("authorization") != expected:
        error = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'}, json=error)
    return _open_registry(request)


async def test_basic_auth() -> None:
    async with _client("127.0.0.1:1", _basic_registry, credentials=Credentials("alice", "pw")) as client:
        await client.login()
        assert (await client.get_manifest("demo/web", "v1")).digest == MANIFEST_DIGEST
    async with _client("127.0.0.1:1", _basic_registry, credentials=Credentials("alice", "wrong")) as client:
        with pytest.raises(AuthenticationError, match="login"):
            await client.login()
    async with _client("127.0.0.1:1", _basic_registry) as client:
        with pytest.raises(AuthenticationError, match="unauthorized"):
            await client.get_manifest("demo/web", "v1")


class _TokenRegistry:
    """A registry and its token service: tokens name their scope, and the registry checks it."""

    def __init__(self) -> None:
        self.token_requests: list[httpx.QueryParams] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            self.token_requests.append(request.url.params)
            if request.headers.get("authorization") != "Basic " + base64.b64encode(b"alice:pw").decode():
                return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            return httpx.Response(
                200, json={"access_token": "tok:" + request.url.params.get("scope", ""), "expires_in": 300}
            )
        if request.url.path == "/v2/":
            return httpx.Response(
                401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.test/token",service="registry.test"'}
            )
        scope = "repository:" + "/".join(request.url.path.split("/")[2:4]) + ":pull"
        if request.headers.get("authorization") == f"Bearer tok:{scope}":
            return _open_registry(request)
        challenge = f'Bearer realm="https://auth.test/token",service="registry.test",scope="{scope}"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})


async def test_bearer_token_flow() -> None:
    service = _TokenRegistry()
    async with _client("127.0.0.1:1", service, credentials=Credentials("alice", "pw")) as client:
        await client.login()
        assert service.token_requests[-1].get("scope") is None
        assert service.token_requests[-1]["service"] == "registry.test"
        assert service.token_requests[-1]["account"] == "alice"
        await client.get_manifest("demo/web", "v1")
        out = io.BytesIO()
        await client.download_blob("demo/web", BLOB_DIGEST, out)
        assert out.getvalue() == BLOB
    scopes = [p.get("scope") for p in service.token_requests]
    assert scopes == [None, "repository:demo/web:pull"]  # one token per scope, reused


async def test_bearer_bad_credentials() -> None:
    async with _client("127.0.0.1:1", _TokenRegistry(), credentials=Credentials("alice", "nope")) as client:
        with pytest.raises(AuthenticationError, match="bad credentials"):
            await client.login()
