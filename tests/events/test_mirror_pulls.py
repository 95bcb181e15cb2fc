"""Pulls served by the pull-through cache (`proxy.remoteurl`) give pull events like any pull, on a
miss and on a hit alike, and nothing for the bytes the cache keeps: the same events, field for
field, as a normal Dockyard pull and as CNCF distribution 2.8's own pull-through cache sends."""

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
from tests.events.client import MANIFEST_TYPE, digest_of, push_image
from tests.events.conftest import endpoint, write_config
from tests.events.receiver import Receiver
from tests.events.test_distribution_shape import comparable
from tests.mirror.conftest import distribution as upstream_registry
from tests.servers import free_port, running_registry, wait_for

pytestmark = pytest.mark.e2e

LAYER = b"mirrored layer bytes"
HOOK = {"timeout": "1s", "threshold": 3, "backoff": "1s"}


def pull_twice(url: str, digest: str) -> int:
    """A client's pull, twice (a miss, then a hit on a cache); returns how many events it makes."""
    accept = {"Accept": MANIFEST_TYPE, "User-Agent": "mirror-test/1.0"}
    with httpx.Client(base_url=url, headers=accept) as client:
        for _ in range(2):
            assert client.get("/v2/team/app/manifests/v1").status_code == 200
            assert client.head("/v2/team/app/manifests/v1").status_code == 200
            assert client.get(f"/v2/team/app/manifests/{digest}").status_code == 200
            assert client.head(f"/v2/team/app/blobs/{digest_of(LAYER)}").status_code == 200
            blob = client.get(f"/v2/team/app/blobs/{digest_of(LAYER)}")
            assert blob.status_code == 200 and blob.content == LAYER
    return 10


@contextmanager
def distribution_mirror(workdir: Path, upstream: str, hook: str) -> Iterator[str]:
    port = free_port()
    config = workdir / "distribution-mirror.yml"
    document = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "dist-mirror")}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "proxy": {"remoteurl": f"http://{upstream}"},
        "notifications": {"events": {"includereferences": True}, "endpoints": [{"name": "r", "url": hook, **HOOK}]},
    }
    config.write_text(yaml.safe_dump(document))
    binary = require_tool("docker-registry")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/v2/", timeout=2).status_code == 200, 30, "docker-registry mirror")
        yield url
    finally:
        process.terminate()
        process.wait(20)


def _pulls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert {e["action"] for e in events} == {"pull"}, [e["action"] for e in events]
    return [comparable(e) for e in events]


def test_mirror_pulls_emit_pull_events_like_normal_pulls(tmp_path: Path) -> None:
    receiver = Receiver().start()
    try:
        with upstream_registry(tmp_path / "upstream") as upstream:
            with httpx.Client(base_url=f"http://{upstream}") as client:
                digest = push_image(client, "team/app", "v1", [LAYER])
                push_image(client, "team/app", "v2", [b"another layer"])
            with distribution_mirror(tmp_path, upstream, receiver.url("/distribution")) as url:
                count = pull_twice(url, digest)
                theirs = receiver.wait_accepted(count, "/distribution")
            proxy = {"remoteurl": f"http://{upstream}", "ttl": "1h"}
            config = write_config(tmp_path / "mirror.yml", [endpoint("r", receiver.url("/mirror"))], proxy=proxy)
            with running_registry(tmp_path / "mirror", config=config) as mirror:
                pull_twice(mirror.url, digest)
                ours = receiver.wait_accepted(count, "/mirror")
                # A HEAD by tag on a miss is answered from the upstream's HEAD: its event has no body
                # to list references from, the rest is as ever.
                head = httpx.head(f"{mirror.url}/v2/team/app/manifests/v2", headers={"Accept": MANIFEST_TYPE})
                assert head.status_code == 200
                head_event = receiver.wait_accepted(count + 1, "/mirror")[-1]
        config = write_config(tmp_path / "local.yml", [endpoint("r", receiver.url("/local"))])
        with running_registry(tmp_path / "local", config=config) as local:
            with httpx.Client(base_url=local.url) as client:
                assert push_image(client, "team/app", "v1", [LAYER]) == digest
            pushes = len(receiver.wait_accepted(3, "/local"))
            pull_twice(local.url, digest)
            normal = receiver.wait_accepted(pushes + count, "/local")[pushes:]
        receiver.settle()
        assert len(receiver.accepted("/mirror")) == count + 1  # no push for what the cache keeps
    finally:
        receiver.stop()
    assert _pulls(ours) == _pulls(theirs)
    assert _pulls(normal) == _pulls(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert list(mine["target"]) == list(reference["target"])
        assert mine["target"]["url"].startswith(mirror.url + "/v2/team/app/")
    head_digest = head.headers["docker-content-digest"]
    assert head_event["action"] == "pull" and head_event["request"]["method"] == "HEAD"
    assert head_event["target"] == {
        "mediaType": MANIFEST_TYPE,
        "size": int(head.headers["content-length"]),
        "digest": head_digest,
        "length": int(head.headers["content-length"]),
        "repository": "team/app",
        "url": f"{mirror.url}/v2/team/app/manifests/{head_digest}",
        "tag": "v2",
    }


def test_events_name_the_repository_the_client_asked_for(tmp_path: Path) -> None:
    """A default upstream's names are kept under its prefix here (`hub/team/app`); the events name
    what the client pulled (`team/app`, by the prefixed name or without it), miss or hit."""
    receiver = Receiver().start()
    try:
        with upstream_registry(tmp_path / "upstream") as upstream:
            with httpx.Client(base_url=f"http://{upstream}") as client:
                digest = push_image(client, "team/app", "v1", [LAYER])
            proxy = {"upstreams": [{"remoteurl": f"http://{upstream}", "prefix": "hub", "default": True}]}
            config = write_config(tmp_path / "mirror.yml", [endpoint("r", receiver.url())], proxy=proxy)
            with running_registry(tmp_path / "mirror", config=config) as mirror:
                count = pull_twice(mirror.url, digest)
                with httpx.Client(base_url=mirror.url) as client:
                    assert client.get(f"/v2/hub/team/app/blobs/{digest_of(LAYER)}").content == LAYER
                events = receiver.wait_accepted(count + 1)
    finally:
        receiver.stop()
    assert [e["target"]["repository"] for e in events] == ["team/app"] * count + ["hub/team/app"]
    for event in events[:count]:
        assert event["target"]["url"].startswith(f"{mirror.url}/v2/team/app/")
