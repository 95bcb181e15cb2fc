"""The same operations against CNCF distribution 2.8 (Debian's `docker-registry`) and Dockyard give
events of the same shape: the same actions in the same order, the same fields in the same order,
the same values (but for what names the server: ports, ids, times)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_tool
from tests.events.client import MANIFEST_TYPE, digest_of, push_image
from tests.events.conftest import endpoint, write_config
from tests.events.receiver import Receiver
from tests.servers import free_port, running_registry, wait_for

pytestmark = pytest.mark.e2e


@contextmanager
def distribution(workdir: Path, hook: str) -> Iterator[str]:
    binary = require_tool("docker-registry")
    port = free_port()
    config = workdir / "distribution.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {workdir / 'dist'}\n"
        f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
        "notifications:\n  events:\n    includereferences: true\n  endpoints:\n"
        f"    - name: r\n      url: {hook}\n      timeout: 1s\n      threshold: 3\n      backoff: 1s\n"
    )
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/v2/", timeout=2).status_code == 200, 30, "docker-registry")
        yield url
    finally:
        process.terminate()
        process.wait(20)


def operate(url: str) -> int:
    """Push, pull, mount, delete; returns how many events distribution makes for them."""
    layer = b"shape layer"
    with httpx.Client(base_url=url, headers={"User-Agent": "shape-test/1.0"}) as client:
        digest = push_image(client, "team/app", "v1", [layer])
        assert client.get("/v2/team/app/manifests/v1", headers={"Accept": MANIFEST_TYPE}).status_code == 200
        assert client.head(f"/v2/team/app/manifests/{digest}", headers={"Accept": MANIFEST_TYPE}).status_code == 200
        assert client.get(f"/v2/team/app/blobs/{digest_of(layer)}").status_code == 200
        mount = client.post("/v2/other/app/blobs/uploads/", params={"mount": digest_of(layer), "from": "team/app"})
        assert mount.status_code == 201
        assert client.delete(f"/v2/other/app/blobs/{digest_of(layer)}").status_code == 202
        assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    return 10


def comparable(event: dict[str, Any]) -> dict[str, Any]:
    """The event with what names the server or the moment replaced by its keys alone."""
    target = dict(event["target"])
    if "url" in target:
        target["url"] = target["url"].split("/v2/", 1)[1]
    return {
        "keys": list(event),
        "action": event["action"],
        "target": target,
        "request": {key: event["request"][key] for key in ("method", "useragent")} | {"keys": list(event["request"])},
        "actor": event["actor"],
        "source": list(event["source"]),
    }


def test_events_match_distribution_2_8(tmp_path: Path) -> None:
    require_tool("docker-registry")
    receiver = Receiver().start()
    try:
        with distribution(tmp_path, receiver.url("/distribution")) as url:
            count = operate(url)
            theirs = receiver.wait_accepted(count, "/distribution")
        config = write_config(tmp_path / "config.yml", [endpoint("r", receiver.url("/dockyard"))])
        with running_registry(tmp_path / "data", config=config) as server:
            operate(server.url)
            ours = receiver.wait_accepted(count, "/dockyard")
        receiver.settle()
        assert len(receiver.accepted("/distribution")) == len(receiver.accepted("/dockyard")) == count
    finally:
        receiver.stop()
    assert [e["action"] for e in ours] == [e["action"] for e in theirs]
    for mine, reference in zip(ours, theirs, strict=True):
        assert comparable(mine) == comparable(reference)
        assert list(mine["target"]) == list(reference["target"])
    deliveries = {d.path: d for d in receiver.attempts()}
    assert deliveries["/dockyard"].headers["Content-Type"] == deliveries["/distribution"].headers["Content-Type"]
