"""The pull-through cache against a real upstream (CNCF distribution behind the fault proxy):
distribution's drop-in `proxy.remoteurl` form, what is cached and for how long, HEADs and ranges."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.faultproxy import Fault
from tests.imagebuild import ImageSpec, busybox_entries, file, layer
from tests.mirror.conftest import Upstream, metric, push_image, running_mirror, skopeo, stored
from tests.servers import start_registry

pytestmark = pytest.mark.e2e

MANIFEST_ACCEPT = {
    "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
}


def test_drop_in_remoteurl_from_the_environment_mirrors_and_refuses_pushes(upstream: Upstream, tmp_path: Path) -> None:
    image = push_image(tmp_path, upstream, "library/busybox", "1.36", ImageSpec([layer(busybox_entries(["sh"]))]))
    mirror = start_registry(tmp_path / "mirror", env={"REGISTRY_PROXY_REMOTEURL": upstream.proxy.url})
    try:
        skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{mirror.address}/library/busybox:1.36",
            f"oci:{tmp_path / 'out'}:x",
        )
        index = json.loads((tmp_path / "out" / "index.json").read_text())
        assert index["manifests"][0]["digest"] == image.manifest_digest
        assert stored(mirror, "library/busybox", image.layers[0].digest) == image.layers[0].blob

        # Pushes are refused as registry:2 refuses them, with the spec's error body.
        r = httpx.post(f"{mirror.url}/v2/library/busybox/blobs/uploads/")
        assert r.status_code == 405
        error = r.json()["errors"][0]
        assert error["code"] == "UNSUPPORTED" and "mirror" in error["message"]
        r = httpx.put(
            f"{mirror.url}/v2/library/busybox/manifests/new",
            content=image.manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 405 and r.json()["errors"][0]["code"] == "UNSUPPORTED"
        refused = skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{tmp_path / 'out'}:x",
            f"docker://{mirror.address}/mine/x:1",
            check=False,
        )
        assert refused.returncode != 0
    finally:
        mirror.stop()


def test_heads_ranges_and_digests_cached_for_good(upstream: Upstream, tmp_path: Path) -> None:
    image = push_image(tmp_path, upstream, "team/app", "v1", ImageSpec([layer([file("hello", b"hello world" * 1000)])]))
    with running_mirror(tmp_path, {"remoteurl": upstream.proxy.url}) as mirror:
        base = f"{mirror.url}/v2/team/app"
        # HEAD by tag on a miss answers from the upstream's HEAD: nothing fetched, nothing stored.
        r = httpx.head(f"{base}/manifests/v1", headers=MANIFEST_ACCEPT)
        assert r.status_code == 200
        assert r.headers["docker-content-digest"] == image.manifest_digest
        assert int(r.headers["content-length"]) == len(image.manifest)
        assert upstream.proxy.count("GET", "/manifests/") == 0

        r = httpx.get(f"{base}/manifests/v1", headers=MANIFEST_ACCEPT)
        assert r.status_code == 200 and r.content == image.manifest
        r = httpx.head(f"{base}/manifests/{image.manifest_digest}")
        assert r.status_code == 200 and r.headers["docker-content-digest"] == image.manifest_digest

        blob = image.layers[0].blob
        r = httpx.head(f"{base}/blobs/{image.layers[0].digest}")
        assert r.status_code == 200 and int(r.headers["content-length"]) == len(blob)
        r = httpx.get(f"{base}/blobs/{image.layers[0].digest}", headers={"Range": "bytes=10-99"})
        assert r.status_code == 206 and r.content == blob[10:100]
        assert r.headers["content-range"] == f"bytes 10-99/{len(blob)}"
        r = httpx.get(f"{base}/blobs/{image.config and image.id}")
        assert r.status_code == 200 and r.content == image.config

        # The upstream goes away: everything addressed by digest is still served, and the tag stale.
        fetched = upstream.proxy.count("GET", "/blobs/")
        upstream.proxy.inject(Fault("drop"))
        r = httpx.get(f"{base}/manifests/{image.manifest_digest}", headers=MANIFEST_ACCEPT)
        assert r.status_code == 200 and r.content == image.manifest
        r = httpx.get(f"{base}/blobs/{image.layers[0].digest}")
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == image.layers[0].digest[7:]
        assert upstream.proxy.count("GET", "/blobs/") == fetched


def test_tags_revalidated_with_head_after_ttl_and_served_stale_when_upstream_fails(
    upstream: Upstream, tmp_path: Path
) -> None:
    first = push_image(tmp_path, upstream, "team/app", "v1", ImageSpec([layer([file("a", b"first")])]))
    proxy = upstream.proxy
    with running_mirror(tmp_path, {"remoteurl": proxy.url, "ttl": "0s", "timeout": "2s"}) as mirror:
        url = f"{mirror.url}/v2/team/app/manifests/v1"
        assert httpx.get(url, headers=MANIFEST_ACCEPT).content == first.manifest
        gets = proxy.count("GET", "/manifests/")
        heads = proxy.count("HEAD", "/manifests/")
        # ttl 0: every pull asks the upstream, with a HEAD; an unchanged tag costs no GET.
        assert httpx.get(url, headers=MANIFEST_ACCEPT).content == first.manifest
        assert proxy.count("HEAD", "/manifests/") == heads + 1
        assert proxy.count("GET", "/manifests/") == gets

        second = push_image(tmp_path, upstream, "team/app", "v1", ImageSpec([layer([file("a", b"second")])]))
        r = httpx.get(url, headers=MANIFEST_ACCEPT)
        assert r.content == second.manifest and "warning" not in r.headers

        for fault in (
            Fault("drop"),
            Fault("status", status=503),
            Fault("status", status=429, headers={"Retry-After": "30"}),
            Fault("delay", seconds=5),
        ):
            proxy.clear()
            proxy.inject(fault)
            r = httpx.get(url, headers=MANIFEST_ACCEPT, timeout=30)
            assert r.status_code == 200, (fault, r.text)
            assert r.content == second.manifest
            assert r.headers["warning"] == '110 - "Response is Stale"'
        proxy.clear()
        assert "serving team/app:v1 stale" in mirror.logs()
        assert metric(mirror, "dockyard_proxy_stale_serves_total", upstream=proxy.address) == 4
        assert metric(mirror, "dockyard_proxy_hits_total", upstream=proxy.address, kind="manifest") >= 1

        # An unknown tag is the upstream's answer, not a stale serve; nothing cached and no upstream: 503.
        r = httpx.get(f"{mirror.url}/v2/team/app/manifests/nope", headers=MANIFEST_ACCEPT)
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        proxy.inject(Fault("drop"))
        r = httpx.get(f"{mirror.url}/v2/team/other/manifests/v1", headers=MANIFEST_ACCEPT)
        assert r.status_code == 503
        error = r.json()["errors"][0]
        assert error["code"] == "UNAVAILABLE" and "nothing is cached" in error["message"]
        proxy.clear()
        proxy.inject(Fault("status", status=429, headers={"Retry-After": "17"}))
        r = httpx.get(f"{mirror.url}/v2/team/other/manifests/v1", headers=MANIFEST_ACCEPT)
        assert r.status_code == 429 and r.headers["retry-after"] == "17"
        assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"


def test_blob_errors_from_the_upstream_map_to_oci_errors(upstream: Upstream, tmp_path: Path) -> None:
    image = push_image(tmp_path, upstream, "team/app", "v1", ImageSpec([layer([file("e", b"errors")])]))
    blob = image.layers[0].digest
    with running_mirror(tmp_path, {"remoteurl": upstream.proxy.url, "timeout": "2s"}) as mirror:
        base = f"{mirror.url}/v2/team/app/blobs"
        missing = "sha256:" + "0" * 64
        for method in ("GET", "HEAD"):
            r = httpx.request(method, f"{base}/{missing}")
            assert r.status_code == 404
            if method == "GET":
                assert r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        for fault, status, code in (
            (Fault("status", status=500), 503, "UNAVAILABLE"),
            (Fault("drop"), 503, "UNAVAILABLE"),
            (Fault("status", status=429, headers={"Retry-After": "5"}), 429, "TOOMANYREQUESTS"),
            (Fault("status", status=403), 403, "DENIED"),
        ):
            upstream.proxy.clear()
            upstream.proxy.inject(fault)
            r = httpx.get(f"{base}/{blob}")
            assert r.status_code == status, (fault, r.text)
            assert r.json()["errors"][0]["code"] == code
        upstream.proxy.clear()
        assert httpx.get(f"{base}/{blob}").content == image.layers[0].blob
        r = httpx.get(f"{base}/not-a-digest")
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
