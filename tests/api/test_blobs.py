from __future__ import annotations

import httpx

from tests.api.conftest import digest_of, error_code, make_app, push_blob


async def test_get_and_head_blob(client: httpx.AsyncClient) -> None:
    data = b"hello blob" * 100
    digest = await push_blob(client, "a/b", data)
    r = await client.get(f"/v2/a/b/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["etag"] == f'"{digest}"'
    assert int(r.headers["content-length"]) == len(data)
    h = await client.head(f"/v2/a/b/blobs/{digest}")
    assert h.status_code == 200
    assert h.content == b""
    assert int(h.headers["content-length"]) == len(data)


async def test_range_requests(client: httpx.AsyncClient) -> None:
    data = bytes(range(256)) * 4
    digest = await push_blob(client, "r", data)
    r = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206
    assert r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=1000-"})
    assert r.status_code == 206 and r.content == data[1000:]
    r = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    assert r.json()["errors"]


async def test_unknown_blob(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/v2/a/blobs/{digest_of(b'nope')}")
    assert r.status_code == 404
    assert error_code(r) == "BLOB_UNKNOWN"


async def test_malformed_digest(client: httpx.AsyncClient) -> None:
    for bad in ["sha256:xyz", "md5:abcd", "notadigest", "sha256:" + "A" * 64]:
        r = await client.get(f"/v2/a/blobs/{bad}")
        assert r.status_code == 400, bad
        assert error_code(r) == "DIGEST_INVALID"


async def test_repository_cannot_read_blob_it_never_linked(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "owner", b"secret bytes")
    r = await client.get(f"/v2/other/blobs/{digest}")
    assert r.status_code == 404
    assert error_code(r) == "BLOB_UNKNOWN"
    r = await client.head(f"/v2/other/blobs/{digest}")
    assert r.status_code == 404


async def test_delete_blob_when_enabled(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "d", b"delete me")
    r = await client.delete(f"/v2/d/blobs/{digest}")
    assert r.status_code == 202
    r = await client.get(f"/v2/d/blobs/{digest}")
    assert r.status_code == 404
    r = await client.delete(f"/v2/d/blobs/{digest}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"


async def test_delete_blob_disabled_is_unsupported() -> None:
    transport = httpx.ASGITransport(app=make_app(delete=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        digest = await push_blob(client, "d", b"keep me")
        r = await client.delete(f"/v2/d/blobs/{digest}")
        assert r.status_code == 405
        assert error_code(r) == "UNSUPPORTED"
        assert (await client.get(f"/v2/d/blobs/{digest}")).status_code == 200
