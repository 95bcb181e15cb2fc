"""Garbage collection over the real store and app, on the memory and filesystem backends: exactly
the unreachable data goes, and the known ways other registries lost data (an index's untagged
children, referrers of a kept manifest, content re-pushed during a run) are each checked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from oci.digest import Digest
from registry import paths
from registry.app import create_app
from registry.config import load_config
from registry.gc import Collector, GCOptions, collect
from registry.gc_record import last_run
from storage_backends import StorageBackend, open_backend
from storage_backends.filesystem import FilesystemBackend
from storage_backends.memory import MemoryBackend
from storage_backends.options import S3Options
from tests.ops.registry_client import (
    digest_of,
    image_manifest,
    pull,
    push_blob,
    push_image,
    push_index,
    push_referrer,
)
from tests.s3server import S3Endpoint, s3_endpoint
from typedconfig import build

NOW = GCOptions(grace_period=0)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Endpoint]:
    with s3_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(params=["memory", "filesystem", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    if request.param == "memory":
        return MemoryBackend()
    if request.param == "s3":
        endpoint: S3Endpoint = request.getfixturevalue("s3")
        return open_backend("s3", build(S3Options, endpoint.options(), "storage.s3"))
    return FilesystemBackend(tmp_path / "data")


# Tests that age files by hand run where file times can be set.
LOCAL = pytest.mark.parametrize("backend", ["memory", "filesystem"], indirect=True)


@pytest.fixture
async def client(backend: StorageBackend) -> AsyncIterator[httpx.AsyncClient]:
    # Blobs are served through the app (no redirect to S3): the client here is ASGI-only.
    env = {
        "REGISTRY_STORAGE_INMEMORY": "",
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "REGISTRY_STORAGE_REDIRECT_DISABLE": "true",
    }
    app = create_app(load_config(None, env), backend=backend)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as c:
        yield c


async def stored_blobs(backend: StorageBackend) -> set[str]:
    found = set()
    for alg in await backend.list(paths.BLOBS):
        for shard in await backend.list(f"{paths.BLOBS}/{alg}"):
            for encoded in await backend.list(f"{paths.BLOBS}/{alg}/{shard}"):
                found.add(f"{alg}:{encoded}")
    return found


async def revisions(backend: StorageBackend, name: str) -> set[str]:
    prefix = paths.manifest_revisions(name)
    return {f"{alg}:{h}" for alg in await backend.list(prefix) for h in await backend.list(f"{prefix}/{alg}")}


def config_blob(n: int) -> bytes:
    return f'{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers"}},"n":{n}}}'.encode()


async def test_frees_exactly_the_unreachable_blobs(client: httpx.AsyncClient, backend: StorageBackend) -> None:
    a_digest, _ = await push_image(client, "app", "a", config_blob(1), [b"layer-1", b"shared"])
    b_digest, _ = await push_image(client, "app", "b", config_blob(2), [b"shared", b"layer-3"])
    await push_blob(client, "app", b"orphan upload")
    await push_image(client, "other", "x", config_blob(3), [b"shared", b"other-layer"])
    assert (await client.delete(f"/v2/app/manifests/{b_digest}")).status_code == 202
    before = await stored_blobs(backend)

    report = await collect(backend, NOW)

    expected = {digest_of(x) for x in (config_blob(2), b"layer-3", b"orphan upload")} | {b_digest}
    assert set(report.blobs) == expected
    assert await stored_blobs(backend) == before - expected
    assert report.freed_bytes == sum(len(x) for x in (config_blob(2), b"layer-3", b"orphan upload")) + len(
        image_manifest(config_blob(2), [b"shared", b"layer-3"])
    )
    # the links of what went are gone too: the repository no longer claims those blobs
    for gone in (b"layer-3", b"orphan upload"):
        assert (await client.head(f"/v2/app/blobs/{digest_of(gone)}")).status_code == 404
    await pull(client, "app", "a")
    await pull(client, "other", "x")
    assert a_digest in await revisions(backend, "app")
    # a second run finds nothing more
    assert (await collect(backend, NOW)).blobs == {}


async def test_untagged_revisions_are_roots_unless_asked(client: httpx.AsyncClient, backend: StorageBackend) -> None:
    untagged, _ = await push_image(client, "app", "@digest", config_blob(1), [b"only-untagged"])
    await push_image(client, "app", "latest", config_blob(2), [b"tagged-layer"])

    assert (await collect(backend, NOW)).blobs == {}
    await pull(client, "app", untagged)

    report = await collect(backend, GCOptions(grace_period=0, delete_untagged=True))
    assert report.manifests == [f"app@{untagged}"]
    assert set(report.blobs) == {untagged, digest_of(config_blob(1)), digest_of(b"only-untagged")}
    assert (await client.get(f"/v2/app/manifests/{untagged}")).status_code == 404
    await pull(client, "app", "latest")


async def test_children_of_a_tagged_index_survive_delete_untagged(
    client: httpx.AsyncClient, backend: StorageBackend
) -> None:
    # As skopeo copy --all does: children by digest (untagged), then the index by tag.
    _, amd64 = await push_image(client, "multi", "@digest", config_blob(1), [b"amd64-layer"])
    _, arm64 = await push_image(client, "multi", "@digest", config_blob(2), [b"arm64-layer"])
    index_digest, _ = await push_index(client, "multi", "v1", [amd64, arm64])

    report = await collect(backend, GCOptions(grace_period=0, delete_untagged=True))
    assert report.blobs == {} and report.manifests == []
    await pull(client, "multi", "v1")

    # Untag the index: now the index and both children go, with everything only they used.
    assert (await client.delete("/v2/multi/manifests/v1")).status_code == 202
    report = await collect(backend, GCOptions(grace_period=0, delete_untagged=True))
    assert sorted(report.manifests) == sorted(f"multi@{d}" for d in (index_digest, digest_of(amd64), digest_of(arm64)))
    assert await stored_blobs(backend) == set()


async def test_referrers_of_a_reachable_manifest_survive(client: httpx.AsyncClient, backend: StorageBackend) -> None:
    image_digest, image = await push_image(client, "signed", "v1", config_blob(1), [b"signed-layer"])
    sig_digest, signature = await push_referrer(client, "signed", image, b"signature", "application/vnd.dev.cosign")
    # a referrer of the referrer (a signature over the SBOM-like artifact)
    sig2_digest, _ = await push_referrer(client, "signed", signature, b"counter-signature", "application/x-sig")
    # and an artifact about a manifest that nothing keeps
    lone_digest, lone = await push_image(client, "signed", "@digest", config_blob(2), [b"lonely"])
    lone_sig, _ = await push_referrer(client, "signed", lone, b"lonely-signature", "application/x-sig")

    report = await collect(backend, GCOptions(grace_period=0, delete_untagged=True))

    assert sorted(report.manifests) == sorted(f"signed@{d}" for d in (lone_digest, lone_sig))
    kept = await revisions(backend, "signed")
    assert {image_digest, sig_digest, sig2_digest} <= kept
    r = await client.get(f"/v2/signed/referrers/{image_digest}")
    assert [m["digest"] for m in r.json()["manifests"]] == [sig_digest]
    await pull(client, "signed", sig_digest)
    await pull(client, "signed", sig2_digest)
    assert digest_of(b"lonely-signature") in report.blobs and digest_of(b"signature") not in report.blobs
    # the referrer index holds no entry for a manifest that is gone
    r = await client.get(f"/v2/signed/referrers/{lone_digest}")
    assert r.status_code in (200, 404) and (r.status_code == 404 or r.json()["manifests"] == [])


async def test_grace_period_spares_young_blobs_and_manifests(
    client: httpx.AsyncClient, backend: StorageBackend
) -> None:
    await push_blob(client, "app", b"just uploaded")
    untagged, _ = await push_image(client, "app", "@digest", config_blob(1), [b"in flight"])
    options = GCOptions(grace_period=3600, delete_untagged=True)

    report = await collect(backend, options)
    assert report.blobs == {} and report.manifests == []
    assert report.spared_young >= 1

    later = Collector(backend, options, clock=lambda: time.time() + 7200)
    report = await later.run()
    assert report.manifests == [f"app@{untagged}"]
    assert digest_of(b"just uploaded") in report.blobs


@LOCAL
async def test_a_recent_mount_of_an_old_blob_is_kept(client: httpx.AsyncClient, backend: StorageBackend) -> None:
    digest = await push_blob(client, "source", b"shared bytes")
    options = GCOptions(grace_period=3600)
    # Two hours later the blob is old and unreferenced; a mount into another repo happens now.
    r = await client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "source"})
    assert r.status_code == 201
    in_two_hours = Collector(backend, options, clock=lambda: time.time() + 7200)
    blob_key = paths.blob_data(Digest.parse(digest))
    old = time.time() - 7200
    if isinstance(backend, MemoryBackend):
        backend.files[blob_key].modified = old
        backend.files[paths.layer_link("source", Digest.parse(digest))].modified = old
        in_two_hours = Collector(backend, options)
    else:
        import os

        os.utime(backend.root / blob_key, (old, old))
        os.utime(backend.root / paths.layer_link("source", Digest.parse(digest)), (old, old))
        in_two_hours = Collector(backend, options)
    report = await in_two_hours.run()
    assert report.blobs == {}
    assert (await client.head(f"/v2/target/blobs/{digest}")).status_code == 200


async def test_dry_run_deletes_nothing(client: httpx.AsyncClient, backend: StorageBackend) -> None:
    await push_image(client, "app", "@digest", config_blob(1), [b"x"])
    await push_blob(client, "app", b"orphan")
    before = await stored_blobs(backend)
    dry = await collect(backend, GCOptions(grace_period=0, delete_untagged=True, dry_run=True))
    assert await stored_blobs(backend) == before
    real = await collect(backend, GCOptions(grace_period=0, delete_untagged=True))
    assert set(dry.blobs) == set(real.blobs) and dry.manifests == real.manifests
    assert dry.freed_bytes == real.freed_bytes > 0


@LOCAL
async def test_expired_upload_sessions_are_removed(client: httpx.AsyncClient, backend: StorageBackend) -> None:
    old = await client.post("/v2/app/blobs/uploads/")
    fresh = await client.post("/v2/app/blobs/uploads/")
    await client.patch(old.headers["location"], content=b"partial")
    options = GCOptions(grace_period=0, upload_age=3600)
    old_id = old.headers["location"].rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    old_time = time.time() - 7200
    for key in (paths.upload_started("app", old_id), paths.upload_data("app", old_id)):
        if isinstance(backend, MemoryBackend):
            backend.files[key].modified = old_time
        else:
            import os

            os.utime(backend.root / key, (old_time, old_time))
    report = await collect(backend, options)
    assert report.uploads == 1
    assert (await client.get(old.headers["location"])).status_code == 404
    assert (await client.get(fresh.headers["location"])).status_code == 204


async def test_push_delete_push_while_collecting(client: httpx.AsyncClient, backend: StorageBackend) -> None:
    """Pushes, deletes and re-pushes of the same content race back-to-back GC runs with a short
    grace period, so re-pushed content is older than the grace period: after every completed push
    a pull of the tag works, and whatever is tagged at the end still pulls."""
    stop = asyncio.Event()
    failures: list[str] = []
    options = GCOptions(grace_period=0.3, delete_untagged=True, batch_size=2)

    async def collector() -> int:
        runs = 0
        while not stop.is_set():
            await collect(backend, options)
            runs += 1
            await asyncio.sleep(0.01)
        return runs

    async def push(name: str, worker: int, round_: int) -> str:
        layers = [f"layer-{worker}-{round_ % 3}".encode(), b"common"]
        for attempt in range(8):
            await asyncio.sleep(0.05 * attempt)
            try:
                digest, _ = await push_image(client, name, "current", config_blob(worker * 100 + round_ % 3), layers)
                return digest
            except AssertionError as exc:
                # GC may remove an unreferenced blob between the client's HEAD (or upload) and its
                # manifest PUT; the PUT is then refused and the client pushes again, as Docker's does.
                assert "BLOB_UNKNOWN" in str(exc), exc
        raise AssertionError("push kept failing")

    async def pusher(worker: int) -> None:
        name = f"race/{worker}"
        for round_ in range(12):
            digest = await push(name, worker, round_)
            try:
                await pull(client, name, "current")
            except AssertionError as exc:
                failures.append(str(exc))
            if round_ % 2:
                assert (await client.delete(f"/v2/{name}/manifests/{digest}")).status_code == 202
            await asyncio.sleep(0.05)

    gc_task = asyncio.create_task(collector())
    await asyncio.gather(*(pusher(w) for w in range(3)))
    stop.set()
    runs = await gc_task
    assert runs >= 2
    assert failures == []
    await asyncio.sleep(0.4)
    await collect(backend, options)
    for worker in range(3):
        tags = (await client.get(f"/v2/race/{worker}/tags/list")).json().get("tags") or []
        for tag in tags:
            await pull(client, f"race/{worker}", tag)


@LOCAL
async def test_each_run_is_recorded_in_storage_for_the_ui(client: httpx.AsyncClient, backend: StorageBackend) -> None:
    assert await last_run(backend) is None
    await push_image(client, "app", "keep", config_blob(1), [b"kept"])
    gone, _ = await push_image(client, "app", "drop", config_blob(2), [b"dropped"])
    assert (await client.delete(f"/v2/app/manifests/{gone}")).status_code == 202
    before = time.time()

    dry = await collect(backend, GCOptions(grace_period=0, dry_run=True))
    recorded = await last_run(backend)
    assert recorded is not None and recorded.dry_run and recorded.finished >= before
    assert set(dry.blobs) == {str(gone), digest_of(config_blob(2)), digest_of(b"dropped")}
    assert (recorded.blobs_deleted, recorded.bytes_freed, recorded.manifests_deleted) == (3, dry.freed_bytes, 0)

    untagged, _ = await push_image(client, "app", "@digest", config_blob(3), [b"untagged"])
    real = await collect(backend, GCOptions(grace_period=0, delete_untagged=True))
    recorded = await last_run(backend)
    assert recorded is not None and not recorded.dry_run
    assert real.manifests == [f"app@{untagged}"] and len(real.blobs) == 6
    assert (recorded.blobs_deleted, recorded.bytes_freed, recorded.manifests_deleted) == (6, real.freed_bytes, 1)
    # Outside distribution's tree, and the next run neither trips over it nor collects it.
    assert not paths.gc_last_run().startswith(paths.ROOT)
    assert (await collect(backend, NOW)).blobs == {}
    recorded = await last_run(backend)
    assert recorded is not None and (recorded.blobs_deleted, recorded.bytes_freed) == (0, 0)
