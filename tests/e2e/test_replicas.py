"""Two `dockyard serve` processes on one store behave as one registry: on the same filesystem
directory and on the same S3 bucket (moto's standalone server over HTTP). Also blob downloads from
S3 by redirect and proxied, with ranges, and storage failures as clean 5xx errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import require_tool
from tests.e2e.test_docker import build_busybox_image
from tests.imagebuild import ImageSpec, busybox_entries, file, layer, write_layout
from tests.s3server import S3Endpoint, free_port, s3_endpoint
from tests.servers import DockerEngine, RegistryProcess, start_registry

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Endpoint]:
    with s3_endpoint() as endpoint:
        yield endpoint


def write_config(path: Path, storage: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"version": "0.1", "storage": {"delete": {"enabled": True}, **storage}}))
    return path


def storage_section(kind: str, tmp_path: Path, s3: S3Endpoint | None, **extra: Any) -> dict[str, Any]:
    if kind == "filesystem":
        return {"filesystem": {"rootdirectory": str(tmp_path / "data")}, **extra}
    assert s3 is not None
    return {"s3": s3.options(), **extra}


@pytest.fixture(params=["filesystem", "s3"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RegistryProcess, RegistryProcess]]:
    s3 = request.getfixturevalue("s3") if request.param == "s3" else None
    config = write_config(tmp_path / "config.yml", storage_section(request.param, tmp_path, s3))
    first = start_registry(tmp_path / "data", config=config)
    try:
        second = start_registry(tmp_path / "data", config=config)
    except Exception:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def data_of(size: int, seed: int) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (size // 32) + b"x" * (size % 32)


def push_blob(url: str, name: str, data: bytes) -> str:
    digest = digest_of(data)
    start = httpx.post(f"{url}/v2/{name}/blobs/uploads/")
    assert start.status_code == 202, start.text
    done = httpx.put(f"{url}{start.headers['location']}", params={"digest": digest}, content=data)
    assert done.status_code == 201, done.text
    return digest


def manifest_for(url: str, name: str, label: str) -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"l": label}}}).encode()
    layer = data_of(1000, hash(label) & 0xFFFF)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": push_blob(url, name, config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": push_blob(url, name, layer), "size": 1000}
        ],
    }
    return json.dumps(manifest).encode()


def put_manifest(url: str, name: str, reference: str, body: bytes) -> httpx.Response:
    return httpx.put(f"{url}/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": OCI_MANIFEST})


def test_upload_continued_on_the_other_replica(replicas: tuple[RegistryProcess, RegistryProcess]) -> None:
    a, b = replicas
    chunks = [data_of(size, i) for i, size in enumerate([MiB, 6 * MiB + 1, 3, 2 * MiB, 5 * MiB])]
    start = httpx.post(f"{a.url}/v2/rep/up/blobs/uploads/")
    assert start.status_code == 202, start.text
    location, offset = start.headers["location"], 0
    for number, chunk in enumerate(chunks):
        server = (a, b)[number % 2]
        headers = {"Content-Range": f"{offset}-{offset + len(chunk) - 1}", "Content-Type": "application/octet-stream"}
        patched = httpx.patch(f"{server.url}{location}", content=chunk, headers=headers, timeout=60)
        assert patched.status_code == 202, patched.text
        offset += len(chunk)
        assert patched.headers["range"] == f"0-{offset - 1}"
        location = patched.headers["location"]
        status = httpx.get(f"{(b, a)[number % 2].url}{location}")  # the other replica knows the progress
        assert status.status_code == 204 and status.headers["range"] == f"0-{offset - 1}"
    whole = b"".join(chunks)
    done = httpx.put(f"{b.url}{location}", params={"digest": digest_of(whole)}, timeout=60)
    assert done.status_code == 201, done.text
    for server in (a, b):
        got = httpx.get(f"{server.url}/v2/rep/up/blobs/{digest_of(whole)}", follow_redirects=True, timeout=60)
        assert got.status_code == 200 and got.content == whole


def test_manifest_pushed_through_one_is_read_through_the_other(
    replicas: tuple[RegistryProcess, RegistryProcess],
) -> None:
    a, b = replicas
    body = manifest_for(a.url, "rep/app", "one")
    assert put_manifest(a.url, "rep/app", "v1", body).status_code == 201
    got = httpx.get(f"{b.url}/v2/rep/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert got.status_code == 200 and got.content == body
    assert got.headers["docker-content-digest"] == digest_of(body)
    assert httpx.get(f"{b.url}/v2/rep/app/tags/list").json()["tags"] == ["v1"]
    # ...and a retag through the other one is seen by the first.
    newer = manifest_for(b.url, "rep/app", "two")
    assert put_manifest(b.url, "rep/app", "v1", newer).status_code == 201
    assert httpx.get(f"{a.url}/v2/rep/app/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == newer


def test_concurrent_pushes_of_one_tag_leave_one_winner(replicas: tuple[RegistryProcess, RegistryProcess]) -> None:
    a, b = replicas
    bodies = [manifest_for(server.url, "rep/race", f"racer-{i}") for i, server in enumerate(replicas)]
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def push(server: RegistryProcess, body: bytes) -> None:
        barrier.wait()
        for _ in range(15):
            response = put_manifest(server.url, "rep/race", "latest", body)
            if response.status_code != 201:
                errors.append(response.text)

    threads = [
        threading.Thread(target=push, args=(server, body)) for server, body in zip(replicas, bodies, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seen = [httpx.get(f"{s.url}/v2/rep/race/manifests/latest", headers={"Accept": OCI_MANIFEST}) for s in (a, b)]
    assert seen[0].content == seen[1].content
    assert seen[0].content in bodies
    assert seen[0].headers["docker-content-digest"] == digest_of(seen[0].content)
    for body in bodies:  # both revisions stay addressable by digest
        assert httpx.get(f"{b.url}/v2/rep/race/manifests/{digest_of(body)}").status_code == 200


@pytest.mark.parametrize("redirect", [True, False])
def test_s3_blob_download_with_range(s3: S3Endpoint, tmp_path: Path, redirect: bool) -> None:
    config = write_config(
        tmp_path / "config.yml", storage_section("s3", tmp_path, s3, redirect={"disable": not redirect})
    )
    server = start_registry(tmp_path / "data", config=config)
    try:
        data = data_of(3 * MiB + 5, 7)
        digest = push_blob(server.url, "rep/dl", data)
        url = f"{server.url}/v2/rep/dl/blobs/{digest}"
        first = httpx.get(url, headers={"Range": "bytes=100-2000000"})
        if redirect:
            assert first.status_code == 307
            location = first.headers["location"]
            assert location.startswith(s3.url) and "X-Amz-Signature=" in location
            part = httpx.get(location, headers={"Range": "bytes=100-2000000"})
        else:
            part = first
        assert part.status_code == 206
        assert part.content == data[100:2000001]
        assert part.headers["content-range"] == f"bytes 100-2000000/{len(data)}"
        whole = httpx.get(url, follow_redirects=True)
        assert whole.status_code == 200 and whole.content == data
        head = httpx.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    finally:
        server.stop()


def test_unreachable_s3_is_a_clean_5xx(tmp_path: Path) -> None:
    dead = S3Endpoint(f"http://127.0.0.1:{free_port()}", "nowhere", "us-east-1", "k", "s")
    config = write_config(tmp_path / "config.yml", {"s3": dead.options(maxretries=1)})
    server = start_registry(tmp_path / "data", config=config)
    try:
        digest = digest_of(b"x")
        for response in (
            httpx.get(f"{server.url}/v2/rep/down/blobs/{digest}", timeout=30),
            httpx.post(f"{server.url}/v2/rep/down/blobs/uploads/", timeout=30),
            httpx.get(f"{server.url}/v2/rep/down/manifests/latest", timeout=30),
        ):
            assert 500 <= response.status_code < 600
            assert response.headers["content-type"].startswith("application/json")
            assert response.json()["errors"][0]["code"] in ("UNAVAILABLE", "UNKNOWN")
        # Each failure is logged with its code and request, so an operator sees the store is down.
        assert "UNAVAILABLE on GET /v2/rep/down/blobs/" in server.logs()
    finally:
        server.stop()


def test_skopeo_through_s3_replicas(s3: S3Endpoint, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    config = write_config(tmp_path / "config.yml", storage_section("s3", tmp_path, s3))
    a = start_registry(tmp_path / "data", config=config)
    b = start_registry(tmp_path / "data", config=config)
    try:
        spec = ImageSpec([layer(busybox_entries(["sh"])), layer([file("etc/motd", b"replicated\n")])])
        image = write_layout(tmp_path / "in", spec, tag="v1")
        run = [skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "--dest-tls-verify=false"]
        _check([*run, f"oci:{tmp_path / 'in'}:v1", f"docker://{a.address}/rep/skopeo:v1"])
        _check([*run, f"docker://{b.address}/rep/skopeo:v1", f"oci:{tmp_path / 'out'}:v1"])
        index = json.loads((tmp_path / "out" / "index.json").read_text())
        assert index["manifests"][0]["digest"] == image.manifest_digest
    finally:
        a.stop()
        b.stop()


def _check(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=os.environ.copy())
    assert result.returncode == 0, result.stderr


def test_docker_through_s3_replicas(docker_engine: DockerEngine, s3: S3Endpoint, tmp_path: Path) -> None:
    """Docker pushes through one replica (one streamed PATCH per layer) and pulls through the
    other, following the 307 redirects to presigned S3 URLs."""
    config = write_config(tmp_path / "config.yml", storage_section("s3", tmp_path, s3))
    a = start_registry(tmp_path / "data", config=config)
    b = start_registry(tmp_path / "data", config=config)
    try:
        pushed_ref = f"{a.address}/rep/docker:v1"
        build_busybox_image(docker_engine, tmp_path / "ctx", pushed_ref)
        push = docker_engine.docker("push", pushed_ref)
        digest = push.stdout.split("digest: ")[1].split()[0]
        pulled_ref = f"{b.address}/rep/docker:v1"
        pulled = docker_engine.docker("pull", pulled_ref)
        assert digest in pulled.stdout
        run = docker_engine.docker("run", "--rm", "--network", "none", pulled_ref)
        assert run.stdout.strip() == "hello from dockyard"
        docker_engine.docker("rmi", pushed_ref, pulled_ref)
    finally:
        a.stop()
        b.stop()
