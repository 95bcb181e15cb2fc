"""The real server's robustness: stray TLS, SIGKILL mid-upload, a second process continuing an
upload, concurrent pushes, and flat memory while streaming large blobs."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.servers import RegistryProcess, start_registry, wait_for

pytestmark = pytest.mark.e2e

# A TLS 1.2 ClientHello prefix, as docker sends it first to a registry it hopes speaks HTTPS.
CLIENT_HELLO = bytes.fromhex("16030100a10100009d0303") + os.urandom(32) + bytes.fromhex("000002c02f01000072")


def test_tls_handshake_on_plain_port_is_closed_promptly(registry: RegistryProcess) -> None:
    with socket.create_connection(("127.0.0.1", registry.port), timeout=5) as sock:
        sock.sendall(CLIENT_HELLO)
        started = time.monotonic()
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert time.monotonic() - started < 5
    assert data == b"" or data.startswith(b"HTTP/1.1 400")
    assert httpx.get(f"{registry.url}/v2/").status_code == 200


def _handshake(port: int, source: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as sock:
        sock.sendall(CLIENT_HELLO)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data


def test_tls_handshakes_are_logged_once_per_address(tmp_path: Path) -> None:
    server = start_registry(tmp_path / "data")
    try:
        answers = [_handshake(server.port, "127.0.0.1") for _ in range(5)]
        answers += [_handshake(server.port, "127.0.0.2") for _ in range(3)]
        assert all(a.startswith(b"HTTP/1.1 400") for a in answers)
        assert httpx.get(f"{server.url}/v2/").status_code == 200
    finally:
        server.stop()
    logs = server.logs()
    lines = [line for line in logs.splitlines() if "TLS handshake from" in line]
    assert len(lines) == 2, logs
    assert "127.0.0.1 on the plain-HTTP port" in lines[0] and "127.0.0.2 on the plain-HTTP port" in lines[1]
    assert "Invalid HTTP request" not in logs
    banner = next(line for line in logs.splitlines() if "dockyard serving on" in line)
    assert " INFO " in banner and "WARNING" not in banner


def _upload_chunk(url: str, location: str, data: bytes, start: int) -> httpx.Response:
    return httpx.patch(
        f"{url}{location}",
        content=data,
        headers={"Content-Range": f"{start}-{start + len(data) - 1}", "Content-Type": "application/octet-stream"},
    )


def test_upload_continues_on_another_process(tmp_path: Path) -> None:
    root = tmp_path / "data"
    a = start_registry(root)
    b = start_registry(root)
    try:
        data = os.urandom(3 * 1024 * 1024 + 17)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        location = httpx.post(f"{a.url}/v2/shared/blobs/uploads/").headers["location"]
        step = 1024 * 1024
        for i, start in enumerate(range(0, len(data), step)):
            server = (a, b)[i % 2]
            r = _upload_chunk(server.url, location, data[start : start + step], start)
            assert r.status_code == 202, r.text
            location = r.headers["location"]
        status = httpx.get(f"{b.url}{location}")
        assert status.headers["range"] == f"0-{len(data) - 1}"
        assert httpx.put(f"{a.url}{location}", params={"digest": digest}).status_code == 201
        assert httpx.get(f"{b.url}/v2/shared/blobs/{digest}").content == data
    finally:
        a.stop()
        b.stop()


def _stream(total: int, block: int = 1024 * 1024) -> Iterator[bytes]:
    chunk = os.urandom(block)
    sent = 0
    while sent < total:
        piece = chunk[: min(block, total - sent)]
        sent += len(piece)
        yield piece


def test_sigkill_mid_upload_leaves_store_consistent_and_resumable(tmp_path: Path) -> None:
    root = tmp_path / "data"
    server = start_registry(root)
    location = httpx.post(f"{server.url}/v2/crash/blobs/uploads/").headers["location"]
    first = os.urandom(2 * 1024 * 1024)
    assert _upload_chunk(server.url, location, first, 0).status_code == 202

    def slow_body() -> Iterator[bytes]:
        for piece in _stream(64 * 1024 * 1024, 256 * 1024):
            yield piece
            time.sleep(0.005)

    def killer() -> None:
        time.sleep(0.5)
        server.process.send_signal(signal.SIGKILL)

    threading.Thread(target=killer).start()
    with pytest.raises(httpx.HTTPError):
        httpx.patch(f"{server.url}{location}", content=slow_body(), timeout=30)
    server.process.wait()

    # no blob became visible and no temporary file is left where readers look
    blobs = root / "docker/registry/v2/blobs"
    assert not blobs.exists() or not any(p.name == "data" for p in blobs.rglob("*"))

    restarted = start_registry(root)
    try:
        status = httpx.get(f"{restarted.url}{location}")
        assert status.status_code == 204
        size = int(status.headers["range"].split("-")[1]) + 1
        assert size >= len(first)
        # the bytes kept are a prefix of what was sent; the client may also start over cleanly
        assert httpx.delete(f"{restarted.url}{location}").status_code == 204
        fresh = httpx.post(f"{restarted.url}/v2/crash/blobs/uploads/").headers["location"]
        data = first + b"rest"
        assert _upload_chunk(restarted.url, fresh, data, 0).status_code == 202
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert httpx.put(f"{restarted.url}{fresh}", params={"digest": digest}).status_code == 201
        assert httpx.get(f"{restarted.url}/v2/crash/blobs/{digest}").content == data
    finally:
        restarted.stop()


def test_resume_after_interrupted_chunk(registry: RegistryProcess) -> None:
    """A client that loses its connection asks for the status and resumes from there."""
    data = os.urandom(512 * 1024)
    location = httpx.post(f"{registry.url}/v2/resume/blobs/uploads/").headers["location"]
    assert _upload_chunk(registry.url, location, data[:100_000], 0).status_code == 202
    end = int(httpx.get(f"{registry.url}{location}").headers["range"].split("-")[1])
    assert _upload_chunk(registry.url, location, data[end + 1 :], end + 1).status_code == 202
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.put(f"{registry.url}{location}", params={"digest": digest}).status_code == 201


def test_concurrent_pushes_of_same_blob_and_tag(registry: RegistryProcess) -> None:
    import json

    layer = os.urandom(256 * 1024)
    config = b'{"architecture":"amd64","os":"linux"}'

    def push_blob(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = httpx.post(f"{registry.url}/v2/conc/blobs/uploads/", timeout=30)
        assert r.status_code == 202
        r = httpx.put(f"{registry.url}{r.headers['location']}", params={"digest": digest}, content=data, timeout=30)
        assert r.status_code == 201, r.text
        return digest

    def push_manifest(i: int) -> str:
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                        "size": len(layer),
                    }
                ],
                "annotations": {"n": str(i)},
            }
        ).encode()
        r = httpx.put(
            f"{registry.url}/v2/conc/manifests/latest",
            content=body,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return str(r.headers["docker-content-digest"])

    with ThreadPoolExecutor(16) as pool:
        digests = set(pool.map(push_blob, [layer] * 16 + [config] * 16))
        assert len(digests) == 2
        pushed = set(pool.map(push_manifest, range(16)))
    winner = httpx.get(f"{registry.url}/v2/conc/manifests/latest").headers["docker-content-digest"]
    assert winner in pushed
    assert httpx.get(f"{registry.url}/v2/conc/blobs/sha256:{hashlib.sha256(layer).hexdigest()}").content == layer


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_memory_stays_flat_for_a_2_gib_layer(registry: RegistryProcess) -> None:
    size = 2 * 1024 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    hasher = hashlib.sha256()
    for _ in range(size // len(block)):
        hasher.update(block)
    digest = "sha256:" + hasher.hexdigest()

    def body() -> Iterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    baseline = _peak_rss_kib(registry.process.pid)
    location = httpx.post(f"{registry.url}/v2/big/blobs/uploads/").headers["location"]
    r = httpx.patch(f"{registry.url}{location}", content=body(), timeout=600)
    assert r.status_code == 202
    r = httpx.put(f"{registry.url}{r.headers['location']}", params={"digest": digest}, timeout=600)
    assert r.status_code == 201
    after_push = _peak_rss_kib(registry.process.pid)

    pulled = hashlib.sha256()
    total = 0
    with httpx.stream("GET", f"{registry.url}/v2/big/blobs/{digest}", timeout=600) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            pulled.update(chunk)
            total += len(chunk)
    assert total == size and "sha256:" + pulled.hexdigest() == digest
    after_pull = _peak_rss_kib(registry.process.pid)
    # The server holds a few MiB of a 2 GiB layer at most, whatever the interpreter itself weighs.
    assert after_push - baseline < 64 * 1024, (baseline, after_push)
    assert after_pull - baseline < 64 * 1024, (baseline, after_pull)


def test_truncated_chunk_is_rolled_back(registry: RegistryProcess) -> None:
    location = httpx.post(f"{registry.url}/v2/trunc/blobs/uploads/").headers["location"]
    assert _upload_chunk(registry.url, location, b"0123456789", 0).status_code == 202
    with socket.create_connection(("127.0.0.1", registry.port), timeout=5) as sock:
        sock.sendall(
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Range: 10-1009\r\nContent-Length: 1000\r\n\r\n".encode()
            + b"only a part"
        )
        time.sleep(0.3)
    # the server notices the disconnect and rolls the partial chunk back
    wait_for(lambda: httpx.get(f"{registry.url}{location}").headers["range"] == "0-9", 10, "rollback")
    assert _upload_chunk(registry.url, location, b"abc", 10).status_code == 202
    digest = "sha256:" + hashlib.sha256(b"0123456789abc").hexdigest()
    assert httpx.put(f"{registry.url}{location}", params={"digest": digest}).status_code == 201


def test_flags_win_over_config_file_and_registry_env_is_honoured(tmp_path: Path) -> None:
    from tests.servers import free_port

    file_port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'ignored'}\n"
        f"http:\n  addr: 127.0.0.1:{file_port}\n"
    )
    server = start_registry(tmp_path / "data", config=config)  # --port given by the helper wins
    try:
        assert server.port != file_port
        digest = "sha256:" + hashlib.sha256(b"env root").hexdigest()
        assert (
            httpx.post(f"{server.url}/v2/f/blobs/uploads/", params={"digest": digest}, content=b"env root").status_code
            == 201
        )
        # REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY (set by the helper) won over the file's rootdirectory
        assert (tmp_path / "data" / "docker/registry/v2/blobs/sha256").exists()
        assert not (tmp_path / "ignored").exists()
    finally:
        server.stop()
