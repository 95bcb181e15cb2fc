"""Governance against a real server on a real port: immutable tags, quotas, robots, retention in GC."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import ROOT, running_registry


def _blob(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)


def _image(client: httpx.Client, name: str, tag: str, payload: bytes) -> httpx.Response:
    config = b"{}"
    for data in (config, payload):
        assert _blob(client, name, data).status_code == 201
    manifest = {
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
                "digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
                "size": len(payload),
            }
        ],
    }
    return client.put(
        f"/v2/{name}/manifests/{tag}",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )


def test_immutable_tag_cannot_move_or_be_deleted(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(
        'policies:\n  repositories:\n    - repositories: "team/*"\n      immutabletags: ["release-*", "v*.*.*"]\n'
    )
    with running_registry(tmp_path / "data", config=config) as server:
        with httpx.Client(base_url=server.url) as client:
            assert _image(client, "team/app", "release-1", b"one").status_code == 201
            assert _image(client, "team/app", "release-1", b"one").status_code == 201  # same digest: fine
            moved = _image(client, "team/app", "release-1", b"two")
            assert moved.status_code == 400
            assert moved.json()["errors"][0]["code"] == "TAG_INVALID"
            assert "tag release-1 is immutable in team/app" in moved.json()["errors"][0]["message"]
            deleted = client.delete("/v2/team/app/manifests/release-1")
            assert deleted.status_code == 403
            assert deleted.json()["errors"][0]["code"] == "DENIED"
            assert "cannot be deleted" in deleted.json()["errors"][0]["message"]
            digest = client.head("/v2/team/app/manifests/release-1").headers["docker-content-digest"]
            by_digest = client.delete(f"/v2/team/app/manifests/{digest}")  # the manifest it names
            assert by_digest.status_code == 403 and by_digest.json()["errors"][0]["code"] == "DENIED"
            assert client.head("/v2/team/app/manifests/release-1").status_code == 200
            assert _image(client, "team/app", "dev", b"two").status_code == 201
            assert _image(client, "team/app", "dev", b"three").status_code == 201  # not immutable
            assert _image(client, "team/app", "v1.2.3", b"one").status_code == 201
            assert _image(client, "team/app", "v1.2.3", b"two").status_code == 400  # v*.*.*
            assert _image(client, "team/app", "v1.2", b"one").status_code == 201
            assert _image(client, "team/app", "v1.2", b"two").status_code == 201  # not v*.*.*
            # the repository glob: `*` stays within one path component; other repositories are free
            for name in ("team/app/sub", "other/app"):
                assert _image(client, name, "release-1", b"one").status_code == 201
                assert _image(client, name, "release-1", b"two").status_code == 201
                assert client.delete(f"/v2/{name}/manifests/release-1").status_code == 202


def test_quota_exceeded_before_bytes_are_stored(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("quotas:\n  limits:\n    - namespace: team\n      maxsize: 1000\n")
    data = tmp_path / "data"
    with running_registry(data, config=config) as server:
        with httpx.Client(base_url=server.url) as client:
            assert _blob(client, "team/a", b"x" * 600).status_code == 201
            big = b"y" * 600
            refused = _blob(client, "team/b", big)
            assert refused.status_code == 403
            body = refused.json()["errors"][0]
            assert body["code"] == "DENIED" and "quota exceeded" in body["message"]
            blob = data / "docker/registry/v2/blobs/sha256" / hashlib.sha256(big).hexdigest()[:2]
            assert not blob.exists()
            # chunked: refused at the PATCH whose Content-Length would exceed it, when it is larger
            # than any blob the namespace holds; else (it could be one) at the PUT that names its digest
            start = client.post("/v2/team/c/blobs/uploads/")
            patch = client.patch(start.headers["location"], content=big + b"y")
            assert patch.status_code == 403
            start = client.post("/v2/team/c/blobs/uploads/")
            patch = client.patch(start.headers["location"], content=big)
            assert patch.status_code == 202
            put = client.put(patch.headers["location"], params={"digest": "sha256:" + hashlib.sha256(big).hexdigest()})
            assert put.status_code == 403 and "quota exceeded" in put.json()["errors"][0]["message"]
            assert not blob.exists()
            # a blob the namespace already holds adds nothing (mounted: the digest is known up front)
            mount = "sha256:" + hashlib.sha256(b"x" * 600).hexdigest()
            mounted = client.post("/v2/team/b/blobs/uploads/", params={"mount": mount, "from": "team/a"})
            assert mounted.status_code == 201
            assert _blob(client, "other/x", big).status_code == 201  # another namespace
    out = subprocess.run(
        [sys.executable, "-m", "dockyard", "quota", "--json", str(config)],
        cwd=ROOT,
        env={**os.environ, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(data)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [{"quota": "ns:team", "usedbytes": 600, "maxbytes": 1000}]


def test_robot_with_pull_scope_cannot_push(tmp_path: Path) -> None:
    from auth.htpasswd import HtpasswdFile

    users = tmp_path / "htpasswd"
    HtpasswdFile(users, rounds=4).set_password("admin", "secret-pass")
    robots = tmp_path / "robots.json"
    config = tmp_path / "c.yml"
    config.write_text(f"auth:\n  htpasswd:\n    path: {users}\n  robots:\n    path: {robots}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    add = [sys.executable, "-m", "dockyard", "robot", "add", "--config", str(config)]
    pull_token = subprocess.run(
        [*add, "reader", "--scope", "team/*:pull"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    push_token = subprocess.run(
        [*add, "ci", "--scope", "team/*:pull,push", "--expires", "30d"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert "dyr_" not in robots.read_text()  # stored hashed
    pusher = subprocess.run(
        [*add, "pusher", "--scope", "team/*:push"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert pusher.stdout.startswith("dyr_")
    listed = subprocess.run(
        [sys.executable, "-m", "dockyard", "robot", "list", "--config", str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "robot$pusher\texpires never\tteam/*:pull,push" in listed  # push implies pull, as in auth.access
    with running_registry(tmp_path / "data", config=config) as server:
        with httpx.Client(base_url=server.url, auth=("robot$ci", push_token)) as ci:
            assert _image(ci, "team/app", "v1", b"layer").status_code == 201
            assert _blob(ci, "elsewhere/app", b"z").status_code == 403
        with httpx.Client(base_url=server.url, auth=("robot$reader", pull_token)) as reader:
            assert reader.get("/v2/team/app/manifests/v1").status_code == 200
            assert _blob(reader, "team/app", b"new").status_code == 403
        with httpx.Client(base_url=server.url, auth=("robot$reader", "dyr_wrong")) as wrong:
            assert wrong.get("/v2/team/app/manifests/v1").status_code == 401
        subprocess.run(
            [sys.executable, "-m", "dockyard", "robot", "rm", "ci", "--config", str(config)],
            cwd=ROOT,
            env=env,
            check=True,
        )
        with httpx.Client(base_url=server.url, auth=("robot$ci", push_token)) as revoked:
            assert revoked.get("/v2/team/app/manifests/v1").status_code == 401


def test_gc_dry_run_lists_what_retention_removes(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(
        'policies:\n  repositories:\n    - repositories: "team/*"\n      retention:\n'
        '        keeplast: 1\n        keepmatching: ["stable"]\n        untaggedolderthan: 1s\n'
    )
    data = tmp_path / "data"
    with running_registry(data, config=config) as server:
        with httpx.Client(base_url=server.url) as client:
            for tag, payload in (("old", b"1"), ("stable", b"2"), ("new", b"3")):
                assert _image(client, "team/app", tag, payload).status_code == 201
    tag_link = data / "docker/registry/v2/repositories/team/app/_manifests/tags"
    for age, tag in ((300, "old"), (200, "stable"), (100, "new")):
        link = tag_link / tag / "current/link"
        when = link.stat().st_mtime - age
        os.utime(link, (when, when))
    env = {**os.environ, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(data)}
    gc = [sys.executable, "-m", "dockyard", "gc", "--grace-period", "0s", str(config)]
    dry = subprocess.run([*gc, "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    assert "would delete tag team/app:old" in dry
    assert "team/app:stable" not in dry and "team/app:new" not in dry
    assert (tag_link / "old").exists()
    subprocess.run(gc, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert sorted(p.name for p in tag_link.iterdir()) == ["new", "stable"]
