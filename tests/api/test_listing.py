from __future__ import annotations

import json

import httpx

from tests.api.conftest import OCI_MANIFEST, digest_of, error_code, push_blob, push_image


async def test_tags_list_pagination(client: httpx.AsyncClient) -> None:
    for tag in ["b", "a", "c10", "c2", "Z"]:
        await push_image(client, "pg", tag)
    assert (await client.get("/v2/pg/tags/list")).json() == {"name": "pg", "tags": ["Z", "a", "b", "c10", "c2"]}
    r = await client.get("/v2/pg/tags/list", params={"n": 2})
    assert r.json()["tags"] == ["Z", "a"]
    assert r.headers["link"] == '</v2/pg/tags/list?n=2&last=a>; rel="next"'
    r = await client.get("/v2/pg/tags/list", params={"n": 2, "last": "a"})
    assert r.json()["tags"] == ["b", "c10"]
    r = await client.get("/v2/pg/tags/list", params={"n": 2, "last": "c10"})
    assert r.json()["tags"] == ["c2"]
    assert "link" not in r.headers
    r = await client.get("/v2/pg/tags/list", params={"n": 0})
    assert r.json()["tags"] == []
    r = await client.get("/v2/pg/tags/list", params={"n": "x"})
    assert r.status_code == 400 and error_code(r) == "PAGINATION_NUMBER_INVALID"


async def test_tags_of_unknown_repository(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/nothing/here/tags/list")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


async def test_catalog_pagination(client: httpx.AsyncClient) -> None:
    names = ["zeta", "alpha/one", "alpha/two", "beta", "alpha"]
    for name in names:
        await push_image(client, name, "v1")
    r = await client.get("/v2/_catalog")
    assert r.json()["repositories"] == sorted(names)
    r = await client.get("/v2/_catalog", params={"n": 2})
    assert r.json()["repositories"] == ["alpha", "alpha/one"]
    assert r.headers["link"] == '</v2/_catalog?n=2&last=alpha%2Fone>; rel="next"'
    r = await client.get("/v2/_catalog", params={"n": 2, "last": "alpha/one"})
    assert r.json()["repositories"] == ["alpha/two", "beta"]
    r = await client.get("/v2/_catalog", params={"n": 5, "last": "beta"})
    assert r.json()["repositories"] == ["zeta"] and "link" not in r.headers


async def test_referrers(client: httpx.AsyncClient) -> None:
    subject_digest, subject_body = await push_image(client, "ref", "v1")
    subject = {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_body)}
    empty = b"{}"
    await push_blob(client, "ref", empty)
    made = {}
    for artifact_type in ["application/vnd.example.sbom", "application/vnd.example.sig"]:
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(empty), "size": 2},
            "layers": [],
            "subject": subject,
            "annotations": {"kind": artifact_type},
        }
        body = json.dumps(doc).encode()
        r = await client.put(
            f"/v2/ref/manifests/{digest_of(body)}", content=body, headers={"Content-Type": OCI_MANIFEST}
        )
        assert r.status_code == 201
        assert r.headers["oci-subject"] == subject_digest
        made[artifact_type] = digest_of(body)
    r = await client.get(f"/v2/ref/referrers/{subject_digest}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.oci.image.index.v1+json"
    index = r.json()
    assert {m["digest"] for m in index["manifests"]} == set(made.values())
    assert all(m["annotations"]["kind"] == m["artifactType"] for m in index["manifests"])
    r = await client.get(f"/v2/ref/referrers/{subject_digest}", params={"artifactType": "application/vnd.example.sig"})
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [made["application/vnd.example.sig"]]
    r = await client.get(f"/v2/ref/referrers/{digest_of(b'nothing')}")
    assert r.status_code == 200 and r.json()["manifests"] == []
    # deleting a referrer removes it from the list
    assert (await client.delete(f"/v2/ref/manifests/{made['application/vnd.example.sig']}")).status_code == 202
    r = await client.get(f"/v2/ref/referrers/{subject_digest}")
    assert [m["digest"] for m in r.json()["manifests"]] == [made["application/vnd.example.sbom"]]


async def test_referrer_may_be_pushed_before_subject(client: httpx.AsyncClient) -> None:
    empty = b"{}"
    await push_blob(client, "early", empty)
    missing_subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"later"), "size": 5}
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "x/y",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(empty), "size": 2},
        "layers": [],
        "subject": missing_subject,
    }
    r = await client.put(
        "/v2/early/manifests/sig", content=json.dumps(doc).encode(), headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201
    r = await client.get(f"/v2/early/referrers/{digest_of(b'later')}")
    assert len(r.json()["manifests"]) == 1
