from __future__ import annotations

import hashlib

import httpx

from storage_backends.memory import MemoryBackend
from tests.api.conftest import digest_of, error_code, make_app, push_blob


async def test_monolithic_post_then_put(client: httpx.AsyncClient) -> None:
    data = b"x" * 1000
    r = await client.post("/v2/m/blobs/uploads/")
    assert r.status_code == 202
    assert r.headers["location"].startswith("/v2/m/blobs/uploads/")
    assert r.headers["docker-upload-uuid"]
    assert r.headers["range"] == "0-0"
    r = await client.put(r.headers["location"], params={"digest": digest_of(data)}, content=data)
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/m/blobs/{digest_of(data)}"
    assert r.headers["docker-content-digest"] == digest_of(data)


async def test_single_post_with_digest(client: httpx.AsyncClient) -> None:
    data = b"single post"
    r = await client.post("/v2/s/blobs/uploads/", params={"digest": digest_of(data)}, content=data)
    assert r.status_code == 201
    assert (await client.get(f"/v2/s/blobs/{digest_of(data)}")).content == data


async def test_single_post_with_wrong_digest_stores_nothing() -> None:
    backend = MemoryBackend()
    transport = httpx.ASGITransport(app=make_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/v2/s/blobs/uploads/", params={"digest": digest_of(b"other")}, content=b"data")
        assert r.status_code == 400
        assert error_code(r) == "DIGEST_INVALID"
        assert not [k for k in backend.files if "/blobs/" in k or "_layers" in k or "_uploads" in k]


async def test_chunked_upload_in_order(client: httpx.AsyncClient) -> None:
    data = bytes(range(256)) * 40
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    r = await client.post("/v2/c/blobs/uploads/")
    location = r.headers["location"]
    offset = 0
    for chunk in chunks:
        end = offset + len(chunk) - 1
        r = await client.patch(
            location,
            content=chunk,
            headers={"Content-Range": f"{offset}-{end}", "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{end}"
        location = r.headers["location"]
        offset = end + 1
    status = await client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == f"0-{len(data) - 1}"
    r = await client.put(location, params={"digest": digest_of(data)})
    assert r.status_code == 201
    assert (await client.get(f"/v2/c/blobs/{digest_of(data)}")).content == data


async def test_out_of_order_chunk_is_416_with_current_range(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/o/blobs/uploads/")
    location = r.headers["location"]
    r = await client.patch(location, content=b"abcd", headers={"Content-Range": "0-3"})
    assert r.status_code == 202
    gap = await client.patch(location, content=b"zz", headers={"Content-Range": "10-11"})
    assert gap.status_code == 416
    assert gap.headers["range"] == "0-3"
    assert error_code(gap) == "BLOB_UPLOAD_INVALID"
    overlap = await client.patch(location, content=b"cd", headers={"Content-Range": "2-3"})
    assert overlap.status_code == 416
    mismatch = await client.patch(location, content=b"efg", headers={"Content-Range": "4-5"})
    assert mismatch.status_code == 416
    # the upload is intact and can go on from where it was
    r = await client.patch(location, content=b"ef", headers={"Content-Range": "4-5"})
    assert r.status_code == 202
    r = await client.put(location, params={"digest": digest_of(b"abcdef")})
    assert r.status_code == 201


async def test_streamed_patch_without_content_range(client: httpx.AsyncClient) -> None:
    data = b"streamed" * 5000

    async def body():  # type: ignore[no-untyped-def]
        for i in range(0, len(data), 7000):
            yield data[i : i + 7000]

    r = await client.post("/v2/st/blobs/uploads/")
    r = await client.patch(r.headers["location"], content=body())
    assert r.status_code == 202
    assert r.headers["range"] == f"0-{len(data) - 1}"
    r = await client.put(r.headers["location"], params={"digest": digest_of(data)})
    assert r.status_code == 201


async def test_patch_with_only_content_length_then_put_with_final_chunk(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/sk/blobs/uploads/")
    r = await client.patch(r.headers["location"], content=b"first-")
    assert r.status_code == 202
    r = await client.put(r.headers["location"], params={"digest": digest_of(b"first-last")}, content=b"last")
    assert r.status_code == 201
    assert (await client.get(f"/v2/sk/blobs/{digest_of(b'first-last')}")).content == b"first-last"


async def test_digest_mismatch_stores_nothing_and_keeps_upload(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/w/blobs/uploads/")
    location = r.headers["location"]
    r = await client.put(location, params={"digest": digest_of(b"expected")}, content=b"actual")
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"
    assert (await client.get(f"/v2/w/blobs/{digest_of(b'actual')}")).status_code == 404
    assert (await client.get(f"/v2/w/blobs/{digest_of(b'expected')}")).status_code == 404


async def test_missing_or_malformed_digest_on_put(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/w/blobs/uploads/")
    r2 = await client.put(r.headers["location"], content=b"x")
    assert r2.status_code == 400 and error_code(r2) == "DIGEST_INVALID"
    r3 = await client.put(r.headers["location"], params={"digest": "sha256:short"})
    assert r3.status_code == 400 and error_code(r3) == "DIGEST_INVALID"


async def test_sha512_digest(client: httpx.AsyncClient) -> None:
    data = b"sha512 content"
    r = await client.post("/v2/h/blobs/uploads/", params={"digest-algorithm": "sha512"})
    assert r.status_code == 202
    r = await client.put(r.headers["location"], params={"digest": digest_of(data, "sha512")}, content=data)
    assert r.status_code == 201
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    assert (await client.get(f"/v2/h/blobs/{digest}")).content == data


async def test_unsupported_digest_algorithm(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/h/blobs/uploads/", params={"digest-algorithm": "md5"})
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


async def test_cancel_upload(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/x/blobs/uploads/")
    location = r.headers["location"]
    assert (await client.delete(location)).status_code == 204
    r = await client.get(location)
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"
    r = await client.patch(location, content=b"x")
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


async def test_unknown_upload_ids(client: httpx.AsyncClient) -> None:
    for upload_id in ["00000000-0000-0000-0000-000000000000", "nope", "%2E%2E", "a" * 300, "%25" * 12]:
        r = await client.get(f"/v2/x/blobs/uploads/{upload_id}")
        assert r.status_code in (404, 400), upload_id
        assert error_code(r) in ("BLOB_UPLOAD_UNKNOWN", "NAME_INVALID")


async def test_upload_of_one_repo_is_not_reachable_from_another(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/one/blobs/uploads/")
    other = r.headers["location"].replace("/v2/one/", "/v2/two/")
    r = await client.patch(other, content=b"x")
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


async def test_cross_repository_mount(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "source", b"shared layer")
    r = await client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "source"})
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/target/blobs/{digest}"
    assert (await client.get(f"/v2/target/blobs/{digest}")).content == b"shared layer"


async def test_mount_from_repo_without_blob_falls_back_to_upload(client: httpx.AsyncClient) -> None:
    await push_blob(client, "elsewhere", b"other")
    digest = digest_of(b"not there")
    r = await client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "elsewhere"})
    assert r.status_code == 202
    assert "/blobs/uploads/" in r.headers["location"]
    assert (await client.get(f"/v2/target/blobs/{digest}")).status_code == 404


async def test_same_blob_pushed_concurrently(client: httpx.AsyncClient) -> None:
    import asyncio

    data = b"concurrent" * 1000
    digests = await asyncio.gather(*(push_blob(client, f"r{i % 3}", data) for i in range(12)))
    assert set(digests) == {digest_of(data)}
    for i in range(3):
        assert (await client.get(f"/v2/r{i}/blobs/{digest_of(data)}")).content == data
