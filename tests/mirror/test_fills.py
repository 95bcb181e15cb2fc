"""Blob fills: concurrent misses share one upstream download, streamed to every client as it
arrives; bytes that do not match their digest are never completed to a client nor stored; a
download every client abandoned still completes (up to the background limit)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import httpx
import pytest

from tests.faultproxy import Fault
from tests.mirror.conftest import (
    Upstream,
    big_layer_image,
    blob_file,
    metric,
    mirror_config,
    push_image,
    running_mirror,
    stored,
)
from tests.servers import RegistryProcess, start_registry, wait_for

pytestmark = pytest.mark.e2e

CLIENTS = 12


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_misses_share_one_download_streamed_as_it_arrives(
    upstream: Upstream, tmp_path: Path, workers: int
) -> None:
    image = push_image(tmp_path, upstream, "team/big", "v1", big_layer_image())
    big = image.layers[0]
    gate = Fault("pause", path=f"/blobs/{big.digest}", method="GET")
    upstream.proxy.inject(gate)
    with running_mirror(tmp_path, {"remoteurl": upstream.proxy.url}, workers=workers) as mirror:
        url = f"{mirror.url}/v2/team/big/blobs/{big.digest}"
        first_bytes = threading.Barrier(CLIENTS + 1, timeout=120)
        results: list[str] = []
        errors: list[BaseException] = []

        def pull() -> None:
            try:
                hasher = hashlib.sha256()
                with httpx.stream("GET", url, timeout=120) as response:
                    assert response.status_code == 200
                    assert int(response.headers["content-length"]) == len(big.blob)
                    chunks = response.iter_bytes()
                    hasher.update(next(chunks))
                    first_bytes.wait()  # every client has bytes while the upstream is still held mid-body
                    for chunk in chunks:
                        hasher.update(chunk)
                results.append("sha256:" + hasher.hexdigest())
            except BaseException as exc:
                errors.append(exc)
                first_bytes.abort()

        threads = [threading.Thread(target=pull) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        first_bytes.wait()
        assert upstream.proxy.sent(f"/blobs/{big.digest}") < len(big.blob)
        assert upstream.proxy.count("GET", f"/blobs/{big.digest}") == 1
        gate.gate.set()
        for thread in threads:
            thread.join(120)
        assert errors == []
        assert results == [big.digest] * CLIENTS
        assert upstream.proxy.count("GET", f"/blobs/{big.digest}") == 1
        assert stored(mirror, "team/big", big.digest) == big.blob

        label = upstream.proxy.address
        assert metric(mirror, "dockyard_proxy_upstream_bytes_total", upstream=label) == len(big.blob)
        assert metric(mirror, "dockyard_proxy_coalesced_total", upstream=label) == CLIENTS - 1
        assert metric(mirror, "dockyard_proxy_misses_total", upstream=label, kind="blob") == CLIENTS
        assert metric(mirror, "dockyard_proxy_served_bytes_total", upstream=label) == CLIENTS * len(big.blob)

        # A hit: from the cache, counted as served bytes, no upstream request.
        assert hashlib.sha256(httpx.get(url).content).hexdigest() == big.digest[7:]
        assert upstream.proxy.count("GET", f"/blobs/{big.digest}") == 1
        assert metric(mirror, "dockyard_proxy_hits_total", upstream=label, kind="blob") == 1
        assert metric(mirror, "dockyard_proxy_served_bytes_total", upstream=label) == (CLIENTS + 1) * len(big.blob)


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
def test_bad_bytes_are_cut_short_and_never_stored(upstream: Upstream, tmp_path: Path, fault: str) -> None:
    image = push_image(tmp_path, upstream, "team/big", "v1", big_layer_image(fault))
    big = image.layers[0]
    upstream.proxy.inject(Fault(fault, path=f"/blobs/{big.digest}"))  # type: ignore[arg-type]
    with running_mirror(tmp_path, {"remoteurl": upstream.proxy.url}) as mirror:
        url = f"{mirror.url}/v2/team/big/blobs/{big.digest}"
        received = 0
        with pytest.raises(httpx.HTTPError), httpx.stream("GET", url, timeout=60) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                received += len(chunk)
        assert received < len(big.blob)  # the client never got a complete (wrong) blob
        assert not blob_file(mirror, big.digest).exists()
        assert "blob fill of" in mirror.logs()

        upstream.proxy.clear()
        r = httpx.get(url, timeout=60)
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == big.digest[7:]
        assert stored(mirror, "team/big", big.digest) == big.blob
        reason = "corrupt" if fault == "corrupt" else "unavailable"
        assert (
            metric(mirror, "dockyard_proxy_upstream_errors_total", upstream=upstream.proxy.address, reason=reason) >= 1
        )


def test_a_corrupt_manifest_is_refused_and_not_stored(upstream: Upstream, tmp_path: Path) -> None:
    image = push_image(tmp_path, upstream, "team/app", "v1", big_layer_image("m"))
    upstream.proxy.inject(Fault("corrupt", path="/manifests/"))
    with running_mirror(tmp_path, {"remoteurl": upstream.proxy.url}) as mirror:
        url = f"{mirror.url}/v2/team/app/manifests/{image.manifest_digest}"
        headers = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        r = httpx.get(url, headers=headers)
        assert r.status_code == 503 and "does not match" in r.json()["errors"][0]["message"]
        assert not blob_file(mirror, image.manifest_digest).exists()
        upstream.proxy.clear()
        r = httpx.get(url, headers=headers)
        assert r.status_code == 200 and r.content == image.manifest


def test_an_abandoned_pull_completes_the_fill_in_the_background(upstream: Upstream, tmp_path: Path) -> None:
    image = push_image(tmp_path, upstream, "team/big", "v1", big_layer_image("abandoned"))
    big = image.layers[0]
    gate = Fault("pause", path=f"/blobs/{big.digest}", method="GET")
    upstream.proxy.inject(gate)
    with running_mirror(tmp_path, {"remoteurl": upstream.proxy.url}) as mirror:
        url = f"{mirror.url}/v2/team/big/blobs/{big.digest}"
        with httpx.stream("GET", url, timeout=60) as response:
            next(response.iter_bytes())  # then the client goes away
        gate.gate.set()
        assert stored(mirror, "team/big", big.digest) == big.blob  # the background fill
        assert hashlib.sha256(httpx.get(url).content).hexdigest() == big.digest[7:]
        assert upstream.proxy.count("GET", f"/blobs/{big.digest}") == 1


def test_an_abandoned_pull_beyond_the_background_limit_stops(upstream: Upstream, tmp_path: Path) -> None:
    image = push_image(tmp_path, upstream, "team/big", "v1", big_layer_image("limit"))
    big = image.layers[0]
    gate = Fault("pause", path=f"/blobs/{big.digest}", method="GET")
    upstream.proxy.inject(gate)
    with running_mirror(tmp_path, {"remoteurl": upstream.proxy.url, "backgroundlimit": 1024}) as mirror:
        url = f"{mirror.url}/v2/team/big/blobs/{big.digest}"
        with httpx.stream("GET", url, timeout=60) as response:
            next(response.iter_bytes())
        gate.gate.set()
        wait_for(lambda: "every client went away" in mirror.logs(), 60, "the fill to stop")
        assert not blob_file(mirror, big.digest).exists()


def test_two_replicas_on_one_storage_fill_the_same_blob_without_corrupting_it(
    upstream: Upstream, tmp_path: Path
) -> None:
    image = push_image(tmp_path, upstream, "team/big", "v1", big_layer_image("replicas"))
    big = image.layers[0]
    gate = Fault("pause", path=f"/blobs/{big.digest}", method="GET")
    upstream.proxy.inject(gate)
    config = mirror_config(tmp_path / "replicas.yml", {"remoteurl": upstream.proxy.url})
    # Each with a temp dir of its own, as on two machines: they cannot share a download.
    (tmp_path / "tmp-one").mkdir()
    (tmp_path / "tmp-two").mkdir()
    one = start_registry(tmp_path / "shared", config=config, env={"TMPDIR": str(tmp_path / "tmp-one")})
    two = start_registry(tmp_path / "shared", config=config, env={"TMPDIR": str(tmp_path / "tmp-two")})
    try:
        digests: list[str] = []
        started = threading.Barrier(3, timeout=120)

        def pull(server: RegistryProcess) -> None:
            hasher = hashlib.sha256()
            with httpx.stream("GET", f"{server.url}/v2/team/big/blobs/{big.digest}", timeout=120) as response:
                chunks = response.iter_bytes()
                hasher.update(next(chunks))
                started.wait()
                for chunk in chunks:
                    hasher.update(chunk)
            digests.append("sha256:" + hasher.hexdigest())

        threads = [threading.Thread(target=pull, args=(server,)) for server in (one, two)]
        for thread in threads:
            thread.start()
        started.wait()  # both replicas are downloading at once
        assert upstream.proxy.count("GET", f"/blobs/{big.digest}") == 2
        gate.gate.set()
        for thread in threads:
            thread.join(120)
        assert digests == [big.digest, big.digest]
        assert stored(one, "team/big", big.digest) == big.blob
        assert stored(two, "team/big", big.digest) == big.blob
        for server in (one, two):
            assert (
                hashlib.sha256(httpx.get(f"{server.url}/v2/team/big/blobs/{big.digest}").content).hexdigest()
                == big.digest[7:]
            )
    finally:
        one.stop()
        two.stop()
