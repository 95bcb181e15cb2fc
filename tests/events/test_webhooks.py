"""Webhooks end to end: a real server on a real port, a real receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import signal
from pathlib import Path

import httpx
import pytest

from tests.events.client import CONFIG, MANIFEST_TYPE, digest_of, manifest, push_blob, push_image
from tests.events.conftest import endpoint, write_config
from tests.events.receiver import Receiver
from tests.servers import running_registry, start_registry, wait_for

pytestmark = pytest.mark.e2e

ENVELOPE = "application/vnd.docker.distribution.events.v1+json"


@pytest.fixture
def receiver() -> Receiver:
    server = Receiver().start()
    yield server  # type: ignore[misc]
    server.stop()


def test_every_action_arrives_as_distribution_sends_it(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(
        tmp_path / "config.yml",
        [endpoint("ci", receiver.url(), headers={"Authorization": ["Bearer s3cret"], "X-Team": "infra"})],
    )
    with running_registry(tmp_path / "data", config=config) as server, httpx.Client(base_url=server.url) as client:
        layer = b"layer bytes"
        digest = push_image(client, "team/app", "v1", [layer])
        assert client.get("/v2/team/app/manifests/v1", headers={"Accept": MANIFEST_TYPE}).status_code == 200
        assert client.head(f"/v2/team/app/blobs/{digest_of(layer)}").status_code == 200
        mounted = client.post("/v2/other/app/blobs/uploads/", params={"mount": digest_of(layer), "from": "team/app"})
        assert mounted.status_code == 201
        assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
        events = receiver.wait_accepted(7)

    host = f"127.0.0.1:{server.port}"
    actions = [(e["action"], e["target"].get("tag"), e["target"].get("digest")) for e in events]
    assert (
        actions
        == [
            ("push", None, digest_of(CONFIG)),
            ("push", None, digest_of(layer)),
            ("push", "v1", digest),
            ("pull", "v1", digest),
            ("pull", None, digest_of(layer)),
            ("mount", None, digest_of(layer)),
            ("delete", None, digest),
            ("delete", "v1", None),
        ][: len(events)]
    )
    events = receiver.wait_accepted(8)
    blob_push, _, manifest_push, manifest_pull, blob_pull, mount, deleted, tag_deleted = events
    body = manifest([layer])
    assert blob_push["target"] == {
        "mediaType": "application/octet-stream",
        "size": len(CONFIG),
        "digest": digest_of(CONFIG),
        "length": len(CONFIG),
        "repository": "team/app",
        "url": f"http://{host}/v2/team/app/blobs/{digest_of(CONFIG)}",
    }
    assert manifest_push["target"] == {
        "mediaType": MANIFEST_TYPE,
        "size": len(body),
        "digest": digest,
        "length": len(body),
        "repository": "team/app",
        "url": f"http://{host}/v2/team/app/manifests/{digest}",
        "tag": "v1",
        "references": [
            {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(CONFIG), "digest": digest_of(CONFIG)},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(layer), "digest": digest_of(layer)},
        ],
    }
    assert manifest_pull["target"] == manifest_push["target"]
    assert blob_pull["request"]["method"] == "HEAD"
    assert mount["target"]["repository"] == "other/app" and mount["target"]["fromRepository"] == "team/app"
    assert deleted["target"] == {"digest": digest, "repository": "team/app"}
    assert tag_deleted["target"] == {"repository": "team/app", "tag": "v1"}
    assert deleted["request"]["id"] == tag_deleted["request"]["id"]
    for event in events:
        assert list(event) == ["id", "timestamp", "action", "target", "request", "actor", "source"]
        assert list(event["request"]) == ["id", "addr", "host", "method", "useragent"]
        assert event["request"]["host"] == host and event["request"]["addr"].startswith("127.0.0.1:")
        assert event["actor"] == {}
        assert event["source"]["addr"].endswith(f":{server.port}") and event["source"]["instanceID"]
        assert event["timestamp"].endswith("Z")
    assert len({event["id"] for event in events}) == len(events)
    delivery = receiver.attempts()[0]
    assert delivery.headers["Content-Type"] == ENVELOPE
    assert delivery.headers["Authorization"] == "Bearer s3cret" and delivery.headers["X-Team"] == "infra"
    assert list(delivery.json) == ["events"]
    # Events that were waiting together go together, in order, each once.
    assert [e["id"] for d in receiver.attempts() for e in d.events] == [e["id"] for e in events]


def test_failing_endpoint_is_retried_with_the_same_ids_in_order(tmp_path: Path) -> None:
    # 5xx twice, then a hang past the timeout, then a 503: then it recovers.
    script = {1: 500, 2: 502, 3: 0, 4: 503}
    receiver = Receiver(answer=lambda attempt, path: script.get(attempt, 200)).start()
    config = write_config(tmp_path / "config.yml", [endpoint("flaky", receiver.url(), timeout="500ms")])
    try:
        with running_registry(tmp_path / "data", config=config) as server, httpx.Client(base_url=server.url) as c:
            digests = [push_blob(c, "app", f"blob {i}".encode()) for i in range(3)]
            accepted = receiver.wait_accepted(3)
    finally:
        receiver.stop()
    assert [event["target"]["digest"] for event in accepted] == digests
    attempts = receiver.attempts()
    first_id = accepted[0]["id"]
    assert [d.status for d in attempts[:5]] == [500, 502, 0, 503, 200]
    # Each retry is the same request (the same events, ids and bytes), until it is accepted.
    assert all(d.body == attempts[4].body and d.events[0]["id"] == first_id for d in attempts[:5])
    # After it the rest follow in order, each once.
    rest = [e["id"] for d in attempts[5:] for e in d.events]
    assert [e["id"] for e in attempts[4].events] + rest == [e["id"] for e in accepted]


def test_refused_connections_then_the_receiver_comes_up(tmp_path: Path) -> None:
    receiver = Receiver()  # not listening yet: connections are refused
    config = write_config(tmp_path / "config.yml", [endpoint("later", receiver.url())])
    waiting = 'dockyard_events_queue_depth{endpoint="later"} 3.0'
    with running_registry(tmp_path / "data", config=config) as server, httpx.Client(base_url=server.url) as client:
        digests = [push_blob(client, "app", f"blob {i}".encode()) for i in range(3)]
        # The deliverer shows the queue behind the refused event growing.
        wait_for(lambda: waiting in httpx.get(f"{server.url}/metrics").text, 30, "three events waiting")
        receiver.start()
        try:
            accepted = receiver.wait_accepted(3)
        finally:
            receiver.stop()
        after = httpx.get(f"{server.url}/metrics").text
    assert [event["target"]["digest"] for event in accepted] == digests
    assert 'dockyard_events_delivered_total{endpoint="later"} 3.0' in after
    assert 'dockyard_events_failed_total{endpoint="later"}' in after


def test_events_pending_at_sigkill_are_delivered_after_restart(tmp_path: Path) -> None:
    receiver = Receiver()
    config = write_config(tmp_path / "config.yml", [endpoint("ci", receiver.url())])
    first = start_registry(tmp_path / "data", config=config)
    try:
        with httpx.Client(base_url=first.url) as client:
            digest = push_image(client, "app", "v1", [b"one", b"two"])
    finally:
        first.stop(signal.SIGKILL)
    receiver.start()
    try:
        with running_registry(tmp_path / "data", config=config):
            accepted = receiver.wait_accepted(4)
    finally:
        receiver.stop()
    assert [e["action"] for e in accepted] == ["push"] * 4
    assert accepted[-1]["target"]["digest"] == digest and accepted[-1]["target"]["tag"] == "v1"
    # Sent by the second process, made by the first.
    assert accepted[0]["source"]["addr"].endswith(f":{first.port}")


def _two_replicas(tmp_path: Path, receiver: Receiver, config: Path, env: dict[str, str] | None = None) -> None:
    root = tmp_path / "data"
    with (
        running_registry(root, config=config, env=env) as one,
        running_registry(root, config=config, env=env) as two,
        httpx.Client(base_url=one.url) as a,
        httpx.Client(base_url=two.url) as b,
    ):
        pushed = {one.port: [], two.port: []}
        for i in range(4):
            pushed[one.port].append(push_blob(a, "app", f"a {i}".encode()))
            pushed[two.port].append(push_blob(b, "app", f"b {i}".encode()))
        receiver.wait_accepted(8)
    accepted = receiver.accepted()
    for port, digests in pushed.items():
        from_replica = [e["target"]["digest"] for e in accepted if e["source"]["addr"].endswith(f":{port}")]
        # At least once, and in the order each replica made them.
        assert list(dict.fromkeys(from_replica)) == digests


def test_two_replicas_on_one_filesystem_store(tmp_path: Path, receiver: Receiver) -> None:
    _two_replicas(tmp_path, receiver, write_config(tmp_path / "config.yml", [endpoint("ci", receiver.url())]))


def test_two_replicas_on_s3(tmp_path: Path, receiver: Receiver) -> None:
    from tests.s3server import s3_endpoint

    with s3_endpoint() as s3:
        config = write_config(
            tmp_path / "config.yml",
            [endpoint("ci", receiver.url())],
            storage={"s3": s3.options(), "delete": {"enabled": True}},
        )
        _two_replicas(tmp_path, receiver, config)


def test_signature_cloudevents_and_filters(tmp_path: Path, receiver: Receiver) -> None:
    endpoints = [
        endpoint("signed", receiver.url("/signed"), format="cloudevents", secret="hush"),
        endpoint("manifests-only", receiver.url("/manifests"), ignore={"mediatypes": ["application/octet-stream"]}),
        endpoint("no-pulls", receiver.url("/nopulls"), ignore={"actions": ["pull"]}),
        endpoint("old-spelling", receiver.url("/old"), ignoredmediatypes=["application/octet-stream"]),
        endpoint("off", receiver.url("/off"), disabled=True),
    ]
    config = write_config(tmp_path / "config.yml", endpoints)
    with running_registry(tmp_path / "data", config=config) as server, httpx.Client(base_url=server.url) as client:
        digest = push_image(client, "team/app", "v2", [b"layer"])
        client.get("/v2/team/app/manifests/v2", headers={"Accept": MANIFEST_TYPE})
        receiver.wait_accepted(4, "/signed")
        receiver.wait_accepted(2, "/manifests")
        receiver.wait_accepted(3, "/nopulls")
        receiver.wait_accepted(2, "/old")
        receiver.settle()
    assert receiver.attempts("/off") == []
    assert [(e["action"], e["target"]["mediaType"]) for e in receiver.accepted("/manifests")] == [
        ("push", MANIFEST_TYPE),
        ("pull", MANIFEST_TYPE),
    ]
    assert len(receiver.accepted("/old")) == 2
    assert [e["action"] for e in receiver.accepted("/nopulls")] == ["push"] * 3
    signed = receiver.attempts("/signed")
    for delivery in signed:
        expected = "sha256=" + hmac.new(b"hush", delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["X-Dockyard-Signature"] == expected
        assert delivery.headers["Content-Type"] == "application/cloudevents+json"
    cloud = signed[2].json
    assert set(cloud) == {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
    assert cloud["specversion"] == "1.0" and cloud["type"] == "dev.dockyard.registry.push"
    assert cloud["subject"] == f"team/app:v2@{digest}"
    assert cloud["id"] == cloud["data"]["id"] and cloud["time"] == cloud["data"]["timestamp"]
    assert cloud["source"] == f"dockyard://{cloud['data']['source']['addr']}"
    assert cloud["data"]["target"]["tag"] == "v2"
