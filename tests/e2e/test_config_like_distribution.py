"""One registry:2 config file, served by CNCF distribution 2.8 (Debian's `docker-registry`) and by
Dockyard: `http.prefix`, `http.headers` and read-only mode answer alike."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import require_tool
from tests.servers import free_port, running_registry, wait_for

pytestmark = pytest.mark.e2e


def config_file(path: Path, root: Path, port: int, read_only: bool) -> Path:
    storage: dict[str, Any] = {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}}
    if read_only:
        storage["maintenance"] = {"readonly": {"enabled": True}}
    http = {"addr": f"127.0.0.1:{port}", "prefix": "/registry/", "headers": {"X-Content-Type-Options": ["nosniff"]}}
    path.write_text(yaml.safe_dump({"version": 0.1, "log": {"level": "warn"}, "storage": storage, "http": http}))
    return path


@contextmanager
def distribution(config: Path, port: int) -> Iterator[str]:
    binary = require_tool("docker-registry")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/registry/v2/", timeout=2).status_code == 200, 30, "docker-registry")
        yield url
    finally:
        process.terminate()
        process.wait(20)


def observe(url: str) -> dict[str, Any]:
    start = httpx.post(f"{url}/registry/v2/same/app/blobs/uploads/")
    location = start.headers.get("location", "")
    return {
        "prefixed base": httpx.get(f"{url}/registry/v2/").status_code,
        "bare base": httpx.get(f"{url}/v2/").status_code,
        "nosniff": httpx.get(f"{url}/registry/v2/").headers.get("x-content-type-options"),
        "upload": start.status_code,
        "allow": start.headers.get("allow"),
        "location path": httpx.URL(location).path.rsplit("/", 1)[0] if location else None,
    }


@pytest.mark.parametrize("read_only", [False, True], ids=["writable", "read-only"])
def test_prefix_headers_and_read_only_answer_as_distribution(tmp_path: Path, read_only: bool) -> None:
    require_tool("docker-registry")
    port = free_port()
    config = config_file(tmp_path / "config.yml", tmp_path / "data", port, read_only)
    with distribution(config, port) as url:
        theirs = observe(url)
    with running_registry(tmp_path / "data", config=config, port=port, ready_path="/registry/v2/") as server:
        ours = observe(server.url)
        refusal = httpx.post(f"{server.url}/registry/v2/same/app/blobs/uploads/")
    assert ours == theirs
    assert theirs["bare base"] == 404 and theirs["prefixed base"] == 200 and theirs["nosniff"] == "nosniff"
    if read_only:
        # distribution 2.8 answers with a plain-text body; ours is the spec's error body.
        assert theirs["upload"] == 405 and theirs["allow"] == "GET, HEAD"
        assert refusal.json()["errors"][0]["code"] == "UNSUPPORTED"
    else:
        assert theirs["location path"] == "/registry/v2/same/app/blobs/uploads"
