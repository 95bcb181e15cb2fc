"""Under an ASGI server that offers `http.response.pathsend` (uvicorn with registry/plainport.py on
plain HTTP, granian), a whole-blob GET from the filesystem backend hands the file to the server; a
ranged GET, or a server without it, streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from registry.app import create_app
from registry.config import load_config
from storage_backends.filesystem import FilesystemBackend
from tests.api.conftest import push_blob


async def _get(app: Any, path: str, extensions: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> list[Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"registry.test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5000),
        "extensions": extensions,
    }
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_whole_blob_is_handed_to_the_server(tmp_path: Path) -> None:
    env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(tmp_path)}
    app = create_app(load_config(None, env), backend=FilesystemBackend(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as client:
        digest = await push_blob(client, "ps", b"0123456789")
    path = f"/v2/ps/blobs/{digest}"
    start, body = await _get(app, path, {"http.response.pathsend": {}}, [])
    assert start["status"] == 200 and (b"content-length", b"10") in start["headers"]
    assert body["type"] == "http.response.pathsend"
    with open(body["path"], "rb") as handle:  # noqa: ASYNC230 - a test reading ten bytes
        assert handle.read() == b"0123456789"
    ranged = await _get(app, path, {"http.response.pathsend": {}}, [(b"range", b"bytes=2-4")])
    assert ranged[0]["status"] == 206 and b"".join(m.get("body", b"") for m in ranged[1:]) == b"234"
    streamed = await _get(app, path, {}, [])
    assert b"".join(m.get("body", b"") for m in streamed[1:]) == b"0123456789"
