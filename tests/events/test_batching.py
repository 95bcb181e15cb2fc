"""Events that happen together are stored together and sent together, and keep every promise:
durable before the answer, each delivered once (with one process), in order, with stable ids."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.events.client import push_blob
from tests.events.conftest import endpoint, write_config
from tests.events.receiver import Receiver
from tests.servers import running_registry, start_registry

pytestmark = pytest.mark.e2e

CLIENTS = 16
PUSHES_PER_CLIENT = 8


def _pending(root: Path, endpoint_name: str) -> list[Path]:
    """The objects waiting for an endpoint, in queue order."""
    directories = list((root / "dockyard" / "events" / "endpoints").glob(f"{endpoint_name}-*"))
    assert len(directories) == 1
    return sorted((directories[0] / "pending").iterdir())


def _stored_events(objects: list[Path]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in objects:
        document = json.loads(path.read_bytes())
        found.extend(document if isinstance(document, list) else [document])
    return found


def _push_concurrently(url: str) -> list[list[str]]:
    """CLIENTS clients at once, each pushing its blobs one after another; the digests per client."""

    def client(number: int) -> list[str]:
        with httpx.Client(base_url=url) as http:
            return [push_blob(http, "app", f"client {number} blob {i}".encode()) for i in range(PUSHES_PER_CLIENT)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(client, range(CLIENTS)))


def test_concurrent_pushes_share_objects_survive_sigkill_and_arrive_once_in_order(tmp_path: Path) -> None:
    receiver = Receiver()  # down while the pushes happen: the events wait in storage
    config = write_config(tmp_path / "config.yml", [endpoint("ci", receiver.url())])
    root = tmp_path / "data"
    first = start_registry(root, config=config)
    try:
        per_client = _push_concurrently(first.url)
    finally:
        first.stop(signal.SIGKILL)  # right after the last answer
    events = len(per_client) * PUSHES_PER_CLIENT
    objects = _pending(root, "ci")
    stored = _stored_events(objects)
    # Every answered push had its event stored; events emitted together were written together.
    assert len(stored) == events
    assert len(objects) < events
    assert all(path.name.endswith(f"-{len(json.loads(path.read_bytes()))}") for path in objects)

    receiver.start()
    try:
        with running_registry(root, config=config):
            accepted = receiver.wait_accepted(events)
            receiver.settle()
    finally:
        receiver.stop()
    # Once each (one process delivered), with the ids they were stored with.
    assert sorted(e["id"] for e in receiver.accepted()) == sorted(e["id"] for e in stored)
    # Sent several to a request.
    assert len(receiver.attempts()) < events
    # In the order each client made them.
    order = [e["target"]["digest"] for e in accepted]
    for digests in per_client:
        assert [digest for digest in order if digest in digests] == digests
    assert not list((root / "dockyard" / "events" / "endpoints").glob("*/pending/*"))


def _old_object(root: Path, endpoint_name: str, number: int) -> dict[str, Any]:
    """An event as the version before batching stored it: one JSON object named <ns>-<process>-<counter>."""
    event = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-12-01T10:00:00Z",
        "action": "push",
        "target": {"mediaType": "application/octet-stream", "digest": f"sha256:{number:064x}", "repository": "old"},
        "request": {"id": "", "method": "PUT", "useragent": "old"},
        "actor": {},
        "source": {"addr": "old:5000", "instanceID": "old"},
    }
    name = f"{time.time_ns() - 10**12 + number:020d}-0ldf0rma-{number:06d}"
    directory = root / "dockyard" / "events" / "endpoints" / _endpoint_dir_name(endpoint_name) / "pending"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(json.dumps(event).encode())
    return event


def _endpoint_dir_name(name: str) -> str:
    return f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def test_events_stored_one_per_object_before_an_upgrade_are_delivered_first(tmp_path: Path) -> None:
    root = tmp_path / "data"
    old = [_old_object(root, "ci", number) for number in range(3)]
    receiver = Receiver().start()
    config = write_config(tmp_path / "config.yml", [endpoint("ci", receiver.url())])
    try:
        with running_registry(root, config=config) as server, httpx.Client(base_url=server.url) as client:
            digest = push_blob(client, "app", b"after the upgrade")
            accepted = receiver.wait_accepted(4)
    finally:
        receiver.stop()
    assert [e["id"] for e in accepted[:3]] == [e["id"] for e in old]
    assert accepted[:3] == old  # sent as stored
    assert accepted[3]["target"]["digest"] == digest


def test_maxevents_one_and_cloudevents_batch_mode(tmp_path: Path) -> None:
    receiver = Receiver()  # down at first, so that events wait and would go together
    endpoints = [
        endpoint("single", receiver.url("/single"), maxevents=1),
        endpoint("batch", receiver.url("/batch"), format="cloudevents", maxevents=10, secret="hush"),
    ]
    config = write_config(tmp_path / "config.yml", endpoints)
    root = tmp_path / "data"
    with running_registry(root, config=config) as server:
        per_client = _push_concurrently(server.url)
        events = len(per_client) * PUSHES_PER_CLIENT
        receiver.start()
        try:
            single = receiver.wait_accepted(events, "/single")
            batch = receiver.wait_accepted(events, "/batch")
        finally:
            receiver.stop()
    assert [e["id"] for e in single] == [e["id"] for e in batch]
    # distribution 2.8's way: one event per request.
    assert all(len(d.events) == 1 for d in receiver.attempts("/single"))
    # CloudEvents batch mode: a JSON array of structured events, at most `maxevents` to a request.
    requests = receiver.attempts("/batch")
    assert max(len(d.events) for d in requests) == 10
    for delivery in requests:
        assert delivery.headers["Content-Type"] == "application/cloudevents-batch+json"
        expected = "sha256=" + hmac.new(b"hush", delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["X-Dockyard-Signature"] == expected
        for cloud in delivery.json:
            assert cloud["specversion"] == "1.0" and cloud["id"] == cloud["data"]["id"]
