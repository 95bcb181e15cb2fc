"""Whole-blob GETs sent by registry/zerocopy.py (`http.response.pathsend` on the plain-HTTP port,
its copy and sendfile paths), against a real `dockyard serve` and a real uvicorn: every byte arrives,
the connection carries on, a client leaving early harms nothing, the bytes are counted, and a
download in flight finishes when the server is told to stop."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from registry.zerocopy import PATHSEND, socket_ref
from tests.servers import RegistryProcess, free_port, start_registry, wait_for

pytestmark = pytest.mark.e2e

BLOB = os.urandom(6 * 1024 * 1024 + 123)
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
NAME = "zero/copy"


def _push(url: str) -> None:
    with httpx.Client(base_url=url) as c:
        r = c.post(f"/v2/{NAME}/blobs/uploads/")
        assert r.status_code == 202, r.text
        r = c.put(r.headers["location"], params={"digest": DIGEST}, content=BLOB)
        assert r.status_code == 201, r.text


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RegistryProcess]:
    registry = start_registry(tmp_path / "data", env={"DOCKYARD_HTTP_DRAINTIMEOUT": "20s"})
    _push(registry.url)
    yield registry
    registry.stop()


def _get(conn: http.client.HTTPConnection, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_whole_blobs_arrive_and_the_connection_carries_on(server: RegistryProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        path = f"/v2/{NAME}/blobs/{DIGEST}"
        for _ in range(2):  # the same keep-alive connection, twice, then other answers on it
            status, headers, body = _get(conn, path)
            assert status == 200
            assert headers["content-length"] == str(len(BLOB))
            assert headers["docker-content-digest"] == DIGEST
            assert body == BLOB
        status, headers, body = _get(conn, path, Range="bytes=10-19")
        assert (status, body) == (206, BLOB[10:20])
        status, _, body = _get(conn, f"/v2/{NAME}/blobs/sha256:{'0' * 64}")
        assert status == 404 and b"BLOB_UNKNOWN" in body
        conn.request("HEAD", path)
        head = conn.getresponse()
        assert head.status == 200 and head.read() == b""
        assert _get(conn, path)[2] == BLOB
    finally:
        conn.close()
    text = httpx.get(f"{server.url}/metrics").text
    sent = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('dockyard_http_sent_bytes_total{route="/v2/{name}/blobs/{digest}"}')
    )
    assert sent >= 3 * len(BLOB)


def test_a_client_leaving_mid_blob_harms_nothing(server: RegistryProcess) -> None:
    request = f"GET /v2/{NAME}/blobs/{DIGEST} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    for _ in range(8):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(request)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert httpx.get(f"{server.url}/v2/{NAME}/blobs/{DIGEST}").content == BLOB
    logs = server.logs()
    assert "Traceback" not in logs and "ERROR" not in logs, logs


def test_sigterm_lets_a_running_download_finish(server: RegistryProcess) -> None:
    received = bytearray()
    done = threading.Event()

    def slow_reader() -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"GET /v2/{NAME}/blobs/{DIGEST} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            while chunk := sock.recv(256 * 1024):
                received.extend(chunk)
                if len(received) < 2 * 1024 * 1024:
                    time.sleep(0.1)  # slow enough that the signal comes mid-download
        done.set()

    thread = threading.Thread(target=slow_reader)
    thread.start()
    wait_for(lambda: len(received) > 0, 10, "the download to start")
    server.process.send_signal(signal.SIGTERM)
    thread.join(30)
    assert done.is_set()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == BLOB
    assert server.process.wait(30) in (0, -signal.SIGTERM)


async def _pathsend_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    offered = PATHSEND in scope.get("extensions", {})
    body = scope["path"].encode() if not offered else b""
    headers = [(b"content-length", str(len(BLOB) if offered else len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if offered:
        await send({"type": PATHSEND, "path": scope["state"]["path"]})
    else:
        await send({"type": "http.response.body", "body": body})


def test_the_protocol_offers_pathsend_on_plain_http(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(BLOB)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["path"] = str(blob)
        await _pathsend_app(scope, receive, send)

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http="registry.plainport:PlainPortProtocol", lifespan="off", log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        wait_for(lambda: server.started, 10, "uvicorn")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            for _ in range(3):
                assert c.get("/").content == BLOB
    finally:
        server.should_exit = True
        thread.join(10)


def test_no_socket_reference_under_tls_or_without_a_socket() -> None:
    class Fake(asyncio.BaseTransport):
        def __init__(self, extra: dict[str, object]) -> None:
            super().__init__(extra)

    assert socket_ref(Fake({})) is None
    a, b = socket.socketpair()
    try:
        assert socket_ref(Fake({"sslcontext": object(), "socket": a})) is None
        ref = socket_ref(Fake({"socket": a}))
        assert ref is not None
        copy = ref.dup()
        assert copy is not None
        os.close(copy)
        a.close()
        other = socket.socket()  # likely takes the number `a` had: the reference must not follow it
        try:
            copy = ref.dup()
            assert copy is None
        finally:
            other.close()
    finally:
        b.close()
