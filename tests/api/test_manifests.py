from __future__ import annotations

import json

import httpx

from tests.api.conftest import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    error_code,
    image_manifest,
    push_blob,
    push_image,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT_LINES = [
    ("Accept", "application/vnd.oci.image.index.v1+json"),
    ("Accept", "application/vnd.oci.image.manifest.v1+json"),
    ("Accept", DOCKER_LIST),
    ("Accept", DOCKER_MANIFEST),
    ("Accept", "application/json"),
    ("Accept", "application/vnd.docker.distribution.manifest.v1+prettyjws"),
]


async def test_put_and_get_by_tag_and_digest(client: httpx.AsyncClient) -> None:
    digest, body = await push_image(client, "app", "v1")
    assert digest == digest_of(body)
    for ref in ("v1", digest):
        r = await client.get(f"/v2/app/manifests/{ref}", headers=ACCEPT_LINES)
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == digest
        h = await client.head(f"/v2/app/manifests/{ref}")
        assert h.status_code == 200 and h.content == b""
        assert int(h.headers["content-length"]) == len(body)
        assert h.headers["docker-content-digest"] == digest


async def test_manifest_stored_byte_for_byte(client: httpx.AsyncClient) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    await push_blob(client, "bytes", config)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [],
    }
    body = json.dumps(doc, indent=7).encode() + b"\n\n"
    r = await client.put("/v2/bytes/manifests/odd", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest_of(body)
    assert (await client.get(f"/v2/bytes/manifests/{digest_of(body)}")).content == body


async def test_put_by_digest_with_tags(client: httpx.AsyncClient) -> None:
    _, body = await push_image(client, "multi", "first")
    digest = digest_of(body)
    r = await client.put(
        f"/v2/multi/manifests/{digest}?tag=a&tag=b", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201
    tags = (await client.get("/v2/multi/tags/list")).json()["tags"]
    assert tags == ["a", "b", "first"]
    assert (await client.get("/v2/multi/manifests/b")).headers["docker-content-digest"] == digest


async def test_put_by_malformed_digest_is_digest_invalid(client: httpx.AsyncClient) -> None:
    # The protocol package's digest error reaches the client as the spec's 400, never as a 500.
    _, body = await push_image(client, "md", "x")
    for reference in ("sha256:xyz", "sha999:" + "a" * 64):
        r = await client.put(f"/v2/md/manifests/{reference}", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID", r.text


async def test_put_by_wrong_digest(client: httpx.AsyncClient) -> None:
    _, body = await push_image(client, "wd", "x")
    r = await client.put(
        f"/v2/wd/manifests/{digest_of(b'other')}", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


async def test_missing_blobs_refused(client: httpx.AsyncClient) -> None:
    config = b"{}"
    await push_blob(client, "mb", config)
    body = image_manifest(config, [b"never pushed"])
    r = await client.put("/v2/mb/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 404
    assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert r.json()["errors"][0]["detail"]["missing"] == [digest_of(b"never pushed")]
    assert (await client.get("/v2/mb/manifests/v1")).status_code == 404


async def test_blob_of_another_repository_does_not_count(client: httpx.AsyncClient) -> None:
    config, layer = b"{}", b"layer"
    await push_blob(client, "other", config)
    await push_blob(client, "other", layer)
    r = await client.put(
        "/v2/mine/manifests/v1", content=image_manifest(config, [layer]), headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 404 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"


async def test_index_requires_children(client: httpx.AsyncClient) -> None:
    child_digest, child = await push_image(client, "idx", "amd64")
    missing = digest_of(b"missing child")
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": child_digest,
                "size": len(child),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": missing,
                "size": 10,
                "platform": {"os": "linux", "architecture": "arm64"},
            },
        ],
    }
    r = await client.put(
        "/v2/idx/manifests/multi", content=json.dumps(index).encode(), headers={"Content-Type": OCI_INDEX}
    )
    assert r.status_code == 404 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    index["manifests"] = index["manifests"][:1]
    body = json.dumps(index).encode()
    r = await client.put("/v2/idx/manifests/multi", content=body, headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 201
    got = await client.get("/v2/idx/manifests/multi")
    assert got.headers["content-type"] == OCI_INDEX and got.content == body


async def test_docker_schema2_and_manifest_list(client: httpx.AsyncClient) -> None:
    config, layer = b'{"os":"linux"}', b"docker layer"
    await push_blob(client, "dk", config)
    await push_blob(client, "dk", layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    r = await client.put("/v2/dk/manifests/v2", content=manifest, headers={"Content-Type": DOCKER_MANIFEST})
    assert r.status_code == 201
    assert (await client.get("/v2/dk/manifests/v2")).headers["content-type"] == DOCKER_MANIFEST
    mlist = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": digest_of(manifest),
                    "size": len(manifest),
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        }
    ).encode()
    r = await client.put("/v2/dk/manifests/list", content=mlist, headers={"Content-Type": DOCKER_LIST})
    assert r.status_code == 201
    assert (await client.get("/v2/dk/manifests/list")).headers["content-type"] == DOCKER_LIST


async def test_bad_manifests_are_manifest_invalid(client: httpx.AsyncClient) -> None:
    config = b"{}"
    await push_blob(client, "bad", config)
    good = json.loads(image_manifest(config, []))
    cases = [
        (b"{not json", OCI_MANIFEST),
        (b"[1,2,3]", OCI_MANIFEST),
        (json.dumps({**good, "schemaVersion": 3}).encode(), OCI_MANIFEST),
        (json.dumps({**good, "layers": "nope"}).encode(), OCI_MANIFEST),
        (json.dumps({**good, "config": {"digest": 5}}).encode(), OCI_MANIFEST),
        (json.dumps(good).encode(), DOCKER_MANIFEST),  # Content-Type disagrees with mediaType
        (
            json.dumps({"schemaVersion": 1, "name": "bad", "tag": "x", "fsLayers": []}).encode(),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        (json.dumps({**good, "mediaType": "application/x-unknown"}).encode(), "application/x-unknown"),
    ]
    for body, content_type in cases:
        r = await client.put("/v2/bad/manifests/t", content=body, headers={"Content-Type": content_type})
        assert r.status_code == 400, body
        assert error_code(r) == "MANIFEST_INVALID", body
    r = await client.put(
        "/v2/bad/manifests/t",
        content=json.dumps({"schemaVersion": 1}).encode(),
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+json"},
    )
    assert "schema 1" in r.json()["errors"][0]["message"]
    assert (await client.get("/v2/bad/manifests/t")).status_code == 404


async def test_huge_manifest_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"schemaVersion":2,"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    r = await client.put("/v2/huge/manifests/t", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 413
    assert error_code(r) == "SIZE_INVALID"


async def test_invalid_tag(client: httpx.AsyncClient) -> None:
    _, body = await push_image(client, "tg", "ok")
    r = await client.put("/v2/tg/manifests/-bad", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400
    assert error_code(r) in ("TAG_INVALID", "MANIFEST_INVALID")


async def test_unknown_manifest_and_repository(client: httpx.AsyncClient) -> None:
    await push_image(client, "known", "v1")
    r = await client.get("/v2/known/manifests/nope")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    r = await client.get(f"/v2/known/manifests/{digest_of(b'x')}")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    r = await client.get("/v2/unknown/manifests/v1")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"
    r = await client.get("/v2/known/manifests/sha256:zzz")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


async def test_delete_tag_and_manifest(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "del", "v1")
    _, _ = await push_image(client, "del", "v2", layer=b"another layer")
    r = await client.put(
        f"/v2/del/manifests/{digest}?tag=alias",
        content=(await client.get(f"/v2/del/manifests/{digest}")).content,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 201
    assert (await client.delete("/v2/del/manifests/v1")).status_code == 202
    assert (await client.get("/v2/del/manifests/v1")).status_code == 404
    assert (await client.get(f"/v2/del/manifests/{digest}")).status_code == 200
    assert (await client.delete(f"/v2/del/manifests/{digest}")).status_code == 202
    assert (await client.get(f"/v2/del/manifests/{digest}")).status_code == 404
    assert (await client.get("/v2/del/tags/list")).json()["tags"] == ["v2"]
    r = await client.delete(f"/v2/del/manifests/{digest}")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"


async def test_concurrent_pushes_of_one_tag_leave_one_winner(client: httpx.AsyncClient) -> None:
    import asyncio

    results = await asyncio.gather(*(push_image(client, "race", "latest", layer=f"l{i}".encode()) for i in range(8)))
    winner = (await client.get("/v2/race/manifests/latest")).headers["docker-content-digest"]
    assert winner in {d for d, _ in results}
    assert (await client.get(f"/v2/race/manifests/{winner}")).status_code == 200
