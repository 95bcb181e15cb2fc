"""Retention rules applied by `dockyard gc`, on the filesystem and on S3 (moto's server): the dry run
lists what the policies would remove, and the real run removes exactly that.

Push times are the tag links' modification times, so the test ages them where the backend keeps
them (a file's mtime; the LastModified moto's in-process server reports) rather than waiting.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.policies.common import OCI_INDEX, blob, digest_of, dockyard, image, index_of, put_manifest
from tests.s3server import s3_endpoint
from tests.servers import RegistryProcess, start_registry

V2 = "docker/registry/v2"
HOUR = 3600.0

POLICIES: dict[str, Any] = {
    "pullflushinterval": "1h",  # only the shutdown writes the batched pull times in this test
    "repositories": [
        {"repositories": "ret/last", "retention": {"keeplast": 2}},
        {"repositories": "ret/within", "retention": {"keepwithin": "1h"}},
        {"repositories": "ret/match", "retention": {"keepmatching": [r"v\d+", "stable"]}},
        {"repositories": "ret/union", "retention": {"keeplast": 1, "keepmatching": ["keep-.*"]}},
        {"repositories": "ret/none", "retention": {}},
        {"repositories": "ret/immutable", "immutabletags": ["release-*"], "retention": {"keeplast": 1}},
        {"repositories": "ret/graph", "retention": {"keepmatching": ["idx", "img"], "untaggedolderthan": "1h"}},
    ],
}


@dataclass
class Storage:
    """Where the registry keeps its data, and how to age a key there."""

    config: Path
    env: dict[str, str]
    age: Callable[[str, float], None]
    exists: Callable[[str], bool]


@pytest.fixture(params=["filesystem", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    config = tmp_path / "config.yml"
    if request.param == "filesystem":
        data = tmp_path / "data"

        def age_file(key: str, seconds: float) -> None:
            path = data / key
            when = path.stat().st_mtime - seconds
            os.utime(path, (when, when))

        config.write_text(yaml.safe_dump({"policies": POLICIES}))
        yield Storage(
            config, {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(data)}, age_file, lambda k: (data / k).exists()
        )
        return
    monkeypatch.delenv("DOCKYARD_TEST_S3_URL", raising=False)  # the keys are aged inside moto
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    with s3_endpoint() as endpoint:
        options = endpoint.options()
        root = options["rootdirectory"]
        config.write_text(yaml.safe_dump({"storage": {"s3": options}, "policies": POLICIES}))
        (bucket,) = [
            b.buckets[endpoint.bucket] for b in s3_backends[DEFAULT_ACCOUNT_ID].values() if endpoint.bucket in b.buckets
        ]

        def age_object(key: str, seconds: float) -> None:
            fake = bucket.keys[f"{root}/{key}"]
            fake.last_modified = fake.last_modified - datetime.timedelta(seconds=seconds)

        def object_exists(key: str) -> bool:
            return f"{root}/{key}" in bucket.keys

        yield Storage(config, {}, age_object, object_exists)


def _tag_link(name: str, tag: str) -> str:
    return f"{V2}/repositories/{name}/_manifests/tags/{tag}/current/link"


def _revision_link(name: str, body: bytes) -> str:
    return f"{V2}/repositories/{name}/_manifests/revisions/sha256/{digest_of(body)[7:]}/link"


def _tags(client: httpx.Client, name: str) -> list[str]:
    return sorted(client.get(f"/v2/{name}/tags/list").json()["tags"] or [])


def _start(tmp_path: Path, storage: Storage) -> RegistryProcess:
    return start_registry(tmp_path / "data", config=storage.config, env=storage.env)


def test_gc_applies_retention_rules(tmp_path: Path, storage: Storage) -> None:
    server = _start(tmp_path, storage)
    aged: dict[str, float] = {}  # tag link or revision link -> how long ago it was pushed
    with httpx.Client(base_url=server.url) as client:

        def push(name: str, tag: str, payload: bytes, hours: float) -> bytes:
            pushed = image(client, name, tag, payload)
            assert pushed.response.status_code == 201, pushed.response.text
            aged[_tag_link(name, tag) if tag else _revision_link(name, pushed.manifest)] = hours * HOUR
            return pushed.manifest

        last = {
            tag: push("ret/last", tag, tag.encode(), hours) for hours, tag in ((4, "a"), (3, "b"), (2, "c"), (1, "d"))
        }
        # referrers-schema tags (cosign's) stay with the manifest they are about, however old
        sig_d, sig_a = (digest_of(last[t]).replace(":", "-") + ".sig" for t in ("d", "a"))
        push("ret/last", sig_d, b"signature of d", 6)
        push("ret/last", sig_a, b"signature of a", 6)
        for hours, tag in ((3, "pulled"), (3, "headed"), (3, "old"), (0, "new")):
            push("ret/within", tag, tag.encode(), hours)
        for tag in ("v1", "v2", "stable", "dev", "v1-rc"):
            push("ret/match", tag, tag.encode(), 2)
        for hours, tag in ((5, "keep-a"), (4, "x"), (1, "y")):
            push("ret/union", tag, tag.encode(), hours)
        for tag in ("t1", "t2"):
            push("ret/none", tag, tag.encode(), 9)
            push("free/app", tag, tag.encode(), 9)  # no policy at all
        for hours, tag in ((3, "release-1"), (2, "dev-1"), (1, "dev-2")):
            push("ret/immutable", tag, tag.encode(), hours)
        # what an index and a kept manifest's referrers need stays, though untagged and old
        child1 = push("ret/graph", "old-child", b"child one", 3)
        child2 = push("ret/graph", "", b"child two", 3)
        index = index_of(child1, child2)
        assert put_manifest(client, "ret/graph", "idx", index, OCI_INDEX).status_code == 201
        subject = push("ret/graph", "img", b"signed image", 3)
        referrer = image(client, "ret/graph", "", b"signature", subject=subject, artifact="application/x-sig")
        assert referrer.response.status_code == 201
        aged[_revision_link("ret/graph", referrer.manifest)] = 3 * HOUR
        orphan = push("ret/graph", "", b"nobody needs me", 3)
        young = push("ret/graph", "", b"just pushed by digest", 0)
        for _ in range(3):
            assert client.get("/v2/ret/within/manifests/pulled").status_code == 200
        assert client.head("/v2/ret/within/manifests/headed").status_code == 200  # containerd resolves so
    for key, seconds in aged.items():
        if seconds:
            storage.age(key, seconds)
    # pull times are batched in memory: nothing written per pull, all of them at shutdown
    pulled_key = f"{V2}/repositories/ret/within/_dockyard/pulled/pulled"
    assert not storage.exists(pulled_key)
    server.stop(signal.SIGTERM)
    assert storage.exists(pulled_key)

    gc = ["gc", "--grace-period", "0s", str(storage.config)]
    dry = dockyard(*gc, "--dry-run", env=storage.env).stdout
    would = {kind: set(re.findall(rf"^would delete {kind} (\S+)", dry, re.M)) for kind in ("tag", "manifest", "blob")}
    expected_tags = {
        "ret/last:a",
        "ret/last:b",
        f"ret/last:{sig_a}",
        "ret/within:old",
        "ret/match:dev",
        "ret/match:v1-rc",
        "ret/union:x",
        "ret/immutable:dev-1",
        "ret/graph:old-child",
    }
    assert would["tag"] == expected_tags, dry
    assert would["manifest"] == {f"ret/graph@{digest_of(orphan)}"}, dry
    assert would["blob"] == {digest_of(orphan), digest_of(b"nobody needs me")}, dry

    report = json.loads(dockyard(*gc, "--json", env=storage.env).stdout)
    assert set(report["tags_deleted"]) == would["tag"]
    assert set(report["manifests_deleted"]) == would["manifest"]
    assert set(report["blobs"]) == would["blob"]

    server = _start(tmp_path, storage)
    try:
        with httpx.Client(base_url=server.url) as client:
            assert _tags(client, "ret/last") == sorted(["c", "d", sig_d])
            assert _tags(client, "ret/within") == ["headed", "new", "pulled"]
            assert _tags(client, "ret/match") == ["stable", "v1", "v2"]
            assert _tags(client, "ret/union") == ["keep-a", "y"]
            assert _tags(client, "ret/none") == ["t1", "t2"]
            assert _tags(client, "free/app") == ["t1", "t2"]
            assert _tags(client, "ret/immutable") == ["dev-2", "release-1"]
            assert _tags(client, "ret/graph") == ["idx", "img"]
            for kept in (child1, child2, index, subject, referrer.manifest, young):
                assert client.head(f"/v2/ret/graph/manifests/{digest_of(kept)}").status_code == 200
            assert client.head(f"/v2/ret/graph/blobs/{digest_of(b'child one')}").status_code == 200
            assert client.head(f"/v2/ret/graph/blobs/{digest_of(b'signature')}").status_code == 200
            assert client.head(f"/v2/ret/graph/manifests/{digest_of(orphan)}").status_code == 404
            assert client.head(f"/v2/ret/graph/blobs/{digest_of(b'nobody needs me')}").status_code == 404
            referrers = client.get(f"/v2/ret/graph/referrers/{digest_of(subject)}").json()["manifests"]
            assert [r["digest"] for r in referrers] == [digest_of(referrer.manifest)]
            assert blob(client, "ret/graph", b"after").status_code == 201
    finally:
        server.stop()
