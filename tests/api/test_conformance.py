"""Behaviours the OCI conformance suites check that the endpoint tests do not: references that
cannot name a tag, malformed digests wherever a digest is read, non-distributable layers, and
sha512 manifests pushed with tags."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from tests.api.conftest import OCI_CONFIG, OCI_MANIFEST, digest_of, error_code, push_blob, push_image

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
# Not a tag (a tag starts with a letter, digit or `_` and has at most 128 characters), not a digest.
NOT_TAGS = [".INVALID_MANIFEST_NAME", "-leading-dash", "t" * 129, "with space", "caf\u00e9"]
MALFORMED_DIGESTS = [
    "sha256:xyz",
    "sha256:" + "A" * 64,  # upper case is not a sha256 encoding
    "sha256:" + "0" * 63,
    "sha512:" + "0" * 64,  # a sha256 length under the sha512 name
    "md5:d41d8cd98f00b204e9800998ecf8427e",  # not a registered algorithm
    "sha256:",
]


async def test_a_reference_that_is_not_a_tag_names_no_manifest(client: httpx.AsyncClient) -> None:
    await push_image(client, "conf/present", "v1")
    for name in ("conf/present", "conf/absent"):
        for reference in NOT_TAGS:
            r = await client.get(f"/v2/{name}/manifests/{reference}")
            assert r.status_code == 404, (name, reference, r.text)
            assert error_code(r) == "MANIFEST_UNKNOWN", (name, reference)
            h = await client.head(f"/v2/{name}/manifests/{reference}")
            assert h.status_code == 404, (name, reference)


@pytest.mark.parametrize("bad", MALFORMED_DIGESTS)
async def test_a_malformed_digest_is_digest_invalid_wherever_it_is_read(client: httpx.AsyncClient, bad: str) -> None:
    _, body = await push_image(client, "conf/digests", "v1")
    location = (await client.post("/v2/conf/digests/blobs/uploads/")).headers["location"]
    manifest_headers = {"Content-Type": OCI_MANIFEST}
    requests = [
        ("PUT", f"/v2/conf/digests/manifests/{bad}", {}, body, manifest_headers),
        ("GET", f"/v2/conf/digests/manifests/{bad}", {}, b"", {}),
        ("DELETE", f"/v2/conf/digests/manifests/{bad}", {}, b"", {}),
        ("GET", f"/v2/conf/digests/blobs/{bad}", {}, b"", {}),
        ("DELETE", f"/v2/conf/digests/blobs/{bad}", {}, b"", {}),
        ("GET", f"/v2/conf/digests/referrers/{bad}", {}, b"", {}),
        ("POST", "/v2/conf/digests/blobs/uploads/", {"digest": bad}, b"data", {}),
        ("POST", "/v2/conf/digests/blobs/uploads/", {"mount": bad, "from": "conf/other"}, b"", {}),
        ("PUT", location, {"digest": bad}, b"data", {}),
    ]
    for method, path, params, content, headers in requests:
        r = await client.request(method, path, params=params, content=content, headers=headers)
        assert r.status_code == 400, (method, path, params, r.status_code, r.text)
        assert error_code(r) == "DIGEST_INVALID", (method, path, params)
    for path in (f"/v2/conf/digests/manifests/{bad}", f"/v2/conf/digests/blobs/{bad}"):
        assert (await client.head(path)).status_code == 400, path
    # The upload the bad PUT named is still there, to be finished with a good digest.
    r = await client.put(location, params={"digest": digest_of(b"data")}, content=b"data")
    assert r.status_code == 201, r.text


NON_DISTRIBUTABLE = [
    (OCI_MANIFEST, OCI_CONFIG, "application/vnd.oci.image.layer.nondistributable.v1.tar"),
    (OCI_MANIFEST, OCI_CONFIG, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
    (OCI_MANIFEST, OCI_CONFIG, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"),
    (DOCKER_MANIFEST, DOCKER_CONFIG, "application/vnd.docker.image.rootfs.foreign.diff.tar"),
    (DOCKER_MANIFEST, DOCKER_CONFIG, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
]


def _manifest_with_layer(manifest_type: str, config_type: str, config: bytes, layer: dict[str, object]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": digest_of(config), "size": len(config)},
        "layers": [layer],
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("manifest_type", "config_type", "layer_type"), NON_DISTRIBUTABLE)
async def test_non_distributable_layers_are_not_pushed(
    client: httpx.AsyncClient, manifest_type: str, config_type: str, layer_type: str
) -> None:
    config = json.dumps({"architecture": "amd64", "os": "windows", "rootfs": {"type": "layers"}}).encode()
    await push_blob(client, "conf/foreign", config)
    never_pushed = b"the base layer, served by its vendor"
    urls = ["https://vendor.example/layers/base.tar.gz", "https://mirror.example/base.tar.gz"]
    layer = {"mediaType": layer_type, "digest": digest_of(never_pushed), "size": len(never_pushed), "urls": urls}
    body = _manifest_with_layer(manifest_type, config_type, config, layer)
    r = await client.put("/v2/conf/foreign/manifests/base", content=body, headers={"Content-Type": manifest_type})
    assert r.status_code == 201, r.text
    got = await client.get("/v2/conf/foreign/manifests/base", headers={"Accept": manifest_type})
    assert got.status_code == 200 and got.content == body
    assert json.loads(got.content)["layers"][0]["urls"] == urls
    assert (await client.head(f"/v2/conf/foreign/blobs/{digest_of(never_pushed)}")).status_code == 404

    # Without URLs there is nowhere else to fetch it from: then it must be here (distribution agrees).
    del layer["urls"]
    body = _manifest_with_layer(manifest_type, config_type, config, layer)
    r = await client.put("/v2/conf/foreign/manifests/nourls", content=body, headers={"Content-Type": manifest_type})
    assert r.status_code == 404 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"


async def test_urls_do_not_excuse_an_ordinary_layer(client: httpx.AsyncClient) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    await push_blob(client, "conf/ordinary", config)
    layer = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": digest_of(b"not pushed"),
        "size": 10,
        "urls": ["https://vendor.example/l.tar.gz"],
    }
    body = _manifest_with_layer(OCI_MANIFEST, OCI_CONFIG, config, layer)
    r = await client.put("/v2/conf/ordinary/manifests/t", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 404 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"


async def test_sha512_manifest_pushed_with_tags(client: httpx.AsyncClient) -> None:
    _, body = await push_image(client, "conf/sha512", "first")
    digest = "sha512:" + hashlib.sha512(body).hexdigest()
    r = await client.put(
        f"/v2/conf/sha512/manifests/{digest}?tag=a&tag=b&tag=first",
        content=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["location"] == f"/v2/conf/sha512/manifests/{digest}"
    for reference in ("a", "b", "first", digest):
        h = await client.head(f"/v2/conf/sha512/manifests/{reference}")
        assert h.status_code == 200 and h.headers["docker-content-digest"] == digest, reference
        g = await client.get(f"/v2/conf/sha512/manifests/{reference}")
        assert g.content == body and g.headers["docker-content-digest"] == digest, reference
    assert (await client.get("/v2/conf/sha512/tags/list")).json()["tags"] == ["a", "b", "first"]
    # The sha256 revision pushed first is still there, under its own digest.
    h = await client.head(f"/v2/conf/sha512/manifests/{digest_of(body)}")
    assert h.status_code == 200 and h.headers["docker-content-digest"] == digest_of(body)
