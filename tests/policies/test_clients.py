"""Immutable tags and robot accounts through real clients: skopeo and a private Docker engine."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import require_tool
from tests.imagebuild import ImageSpec, file, layer, write_layout
from tests.policies.common import dockyard
from tests.servers import DockerEngine, free_port, running_registry

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout with two different small images, tagged `one` and `two`."""
    require_tool("skopeo")
    base = tmp_path_factory.mktemp("layouts") / "oci"
    for tag in ("one", "two"):
        write_layout(base, ImageSpec([layer([file("hello", f"image {tag}\n".encode())])]), tag=tag)
    return base


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"
    return result


def copy(
    layouts: Path, tag: str, ref: str, creds: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    auth = ["--dest-creds", creds] if creds else []
    return skopeo("copy", "--dest-tls-verify=false", *auth, f"oci:{layouts}:{tag}", f"docker://{ref}", check=check)


def test_immutable_tags_with_skopeo_and_docker(tmp_path: Path, layouts: Path, docker_engine: DockerEngine) -> None:
    config = tmp_path / "c.yml"
    policy = {"repositories": "team/*", "immutabletags": ["release-*", "v*.*.*"]}
    config.write_text(yaml.safe_dump({"policies": {"repositories": [policy]}}))
    with running_registry(tmp_path / "data", config=config) as server:
        ref = f"{server.address}/team/app"
        copy(layouts, "one", f"{ref}:release-1")
        copy(layouts, "one", f"{ref}:release-1")  # the same digest again: fine
        moved = copy(layouts, "two", f"{ref}:release-1", check=False)
        assert moved.returncode != 0 and "tag release-1 is immutable in team/app" in moved.stderr, moved.stderr
        deleted = skopeo("delete", "--tls-verify=false", f"docker://{ref}:release-1", check=False)
        assert deleted.returncode != 0 and "immutable" in deleted.stderr, deleted.stderr
        copy(layouts, "two", f"{ref}:dev")
        copy(layouts, "one", f"{ref}:dev")  # not immutable: moves
        # the Docker engine (which pushes its own manifests): a tag it pushed can be pushed again
        # with the same digest, and is refused with the message when it would move
        copy(layouts, "two", f"{ref}:v1.2.3")
        for tag in ("dev", "v1.2.3"):
            docker_engine.docker("pull", f"{ref}:{tag}")
        docker_engine.docker("tag", f"{ref}:dev", f"{ref}:release-2")
        docker_engine.docker("push", f"{ref}:release-2")
        docker_engine.docker("push", f"{ref}:release-2")
        docker_engine.docker("tag", f"{ref}:v1.2.3", f"{ref}:release-2")
        refused = docker_engine.docker("push", f"{ref}:release-2", check=False)
        assert refused.returncode != 0 and "tag release-2 is immutable in team/app" in refused.stderr, refused
        tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{ref}").stdout)["Tags"]
        assert sorted(tags) == ["dev", "release-1", "release-2", "v1.2.3"]
        digest = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}:release-1").stdout)["Digest"]
        assert digest == json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}:dev").stdout)["Digest"]


def _robot_config(tmp_path: Path, port: int, mode: str) -> Path:
    from auth.htpasswd import HtpasswdFile

    users = tmp_path / "htpasswd"
    HtpasswdFile(users, rounds=4).set_password("admin", "admin-password")
    auth: dict[str, object] = {"htpasswd": {"path": str(users)}, "robots": {"path": str(tmp_path / "robots.json")}}
    if mode == "token":
        auth["token"] = {"service": f"127.0.0.1:{port}", "issuer": "dockyard-test"}
        auth["tokenserver"] = {"path": "/auth/token"}
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"auth": auth}))
    return config


def _login(engine: DockerEngine, address: str, user: str, token: str) -> subprocess.CompletedProcess[str]:
    return engine.docker("login", "-u", user, "-p", token, address, check=False)


@pytest.mark.parametrize("mode", ["htpasswd", "token"])
def test_robot_accounts_with_docker_and_skopeo(
    tmp_path: Path, layouts: Path, docker_engine: DockerEngine, mode: str
) -> None:
    port = free_port()
    config = _robot_config(tmp_path, port, mode)
    robot = ["robot", "--config", str(config)]
    added = dockyard(*robot[:1], "add", *robot[1:], "ci", "--scope", "team/*:pull,push", "--expires", "30d")
    token = added.stdout.strip()
    assert token.startswith("dyr_") and "shown only now" in added.stderr
    assert token not in (tmp_path / "robots.json").read_text()  # stored hashed
    reader = dockyard("robot", "add", "reader", "--scope", "team/*:pull", "--config", str(config)).stdout.strip()
    brief = dockyard("robot", "add", "brief", "--scope", "team/*:pull,push", "--expires", "1s", "--config", str(config))
    listing = dockyard(*robot[:1], "list", *robot[1:]).stdout
    assert "robot$ci\texpires" in listing and "team/*:pull,push" in listing and "robot$reader\texpires never" in listing
    assert token not in listing
    with running_registry(tmp_path / "data", config=config, port=port) as server:
        address = server.address
        # skopeo with --creds: push inside the scope, refused outside it and for the pull-only robot
        copy(layouts, "one", f"{address}/team/app:v1", creds=f"robot$ci:{token}")
        outside = copy(layouts, "one", f"{address}/elsewhere/app:v1", creds=f"robot$ci:{token}", check=False)
        assert outside.returncode != 0
        readonly = copy(layouts, "two", f"{address}/team/app:v2", creds=f"robot$reader:{reader}", check=False)
        assert readonly.returncode != 0
        pulled = skopeo(
            "inspect", "--tls-verify=false", "--creds", f"robot$reader:{reader}", f"docker://{address}/team/app:v1"
        )
        assert json.loads(pulled.stdout)["Name"].endswith("team/app")
        # the Docker engine: docker login -u 'robot$ci' -p TOKEN, then pull and push within the scope
        assert _login(docker_engine, address, "robot$ci", "dyr_wrong").returncode != 0
        logged = _login(docker_engine, address, "robot$ci", token)
        assert logged.returncode == 0, logged.stderr
        docker_engine.docker("pull", f"{address}/team/app:v1")
        docker_engine.docker("tag", f"{address}/team/app:v1", f"{address}/team/copy:v1")
        docker_engine.docker("push", f"{address}/team/copy:v1")
        docker_engine.docker("tag", f"{address}/team/app:v1", f"{address}/elsewhere/app:v1")
        denied = docker_engine.docker("push", f"{address}/elsewhere/app:v1", check=False)
        assert denied.returncode != 0, denied.stdout
        if mode == "token":
            _token_flow(server.url, port, token)
        # expired: refused at login, by Basic and by the token endpoint alike
        time.sleep(
            max(0.0, json.loads((tmp_path / "robots.json").read_text())["robots"]["brief"]["expires"] - time.time())
        )
        assert "(expired)" in dockyard("robot", "list", "--config", str(config)).stdout
        assert _login(docker_engine, address, "robot$brief", brief.stdout.strip()).returncode != 0
        # revoked: the next login fails, and so does a push with the credentials docker kept
        dockyard("robot", "rm", "ci", "--config", str(config))
        assert "robot$ci" not in dockyard("robot", "list", "--config", str(config)).stdout
        docker_engine.docker("tag", f"{address}/team/app:v1", f"{address}/team/copy:v2")
        after = docker_engine.docker("push", f"{address}/team/copy:v2", check=False)
        assert after.returncode != 0, after.stdout
        assert _login(docker_engine, address, "robot$ci", token).returncode != 0
        docker_engine.docker("logout", address)


def _token_flow(url: str, port: int, token: str) -> None:
    """The token endpoint cuts robot tokens holding exactly the scope's actions."""
    service = f"127.0.0.1:{port}"
    scopes = ["repository:team/app:pull,push,delete", "repository:elsewhere/app:pull,push"]
    answer = httpx.get(f"{url}/auth/token", params={"service": service, "scope": scopes}, auth=("robot$ci", token))
    assert answer.status_code == 200, answer.text
    claims = json.loads(base64.urlsafe_b64decode(answer.json()["token"].split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]
    bearer = {"Authorization": f"Bearer {answer.json()['token']}"}
    assert httpx.get(f"{url}/v2/team/app/tags/list", headers=bearer).json()["tags"] == ["v1"]
    assert httpx.post(f"{url}/v2/elsewhere/app/blobs/uploads/", headers=bearer).status_code == 401


def test_quota_refusal_seen_by_skopeo(tmp_path: Path, layouts: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"quotas": {"limits": [{"namespace": "small", "maxsize": "100"}]}}))
    with running_registry(tmp_path / "data", config=config) as server:
        refused = copy(layouts, "one", f"{server.address}/small/app:v1", check=False)
        assert refused.returncode != 0 and "quota exceeded" in refused.stderr, refused.stderr
        copy(layouts, "one", f"{server.address}/large/app:v1")


def test_skopeo_pushes_layers_the_namespace_holds_despite_a_full_quota(tmp_path: Path) -> None:
    """skopeo, not knowing the layers are in team/a, uploads them to team/b in chunks (POST, PATCH,
    PUT ?digest=): they are held already, so neither is refused for its length nor counted twice."""
    require_tool("skopeo")
    noise = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(256))  # 8 KiB that gzip cannot shrink
    image = write_layout(tmp_path / "oci", ImageSpec([layer([file("data.bin", noise)])]), tag="q")
    held = len(image.config) + sum(len(part.blob) for part in image.layers)
    config = tmp_path / "c.yml"
    limit = {"namespace": "team", "maxsize": str(held + 100)}  # room for the manifest, not for a layer again
    config.write_text(yaml.safe_dump({"quotas": {"limits": [limit]}}))
    with running_registry(tmp_path / "data", config=config) as server, httpx.Client(base_url=server.url) as client:
        for data in (image.config, *(part.blob for part in image.layers)):
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            stored = client.post("/v2/team/a/blobs/uploads/", params={"digest": digest}, content=data)
            assert stored.status_code == 201, stored.text
        copy(tmp_path / "oci", "q", f"{server.address}/team/b:v1")
        inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{server.address}/team/b:v1").stdout)
        assert inspected["Digest"] == image.manifest_digest
        used = re.search(r'^dockyard_quota_used_bytes\{quota="ns:team"\} (\S+)$', client.get("/metrics").text, re.M)
        assert used is not None and int(float(used.group(1))) == held + len(image.manifest)
        refused = copy(_unheld_layout(tmp_path / "other"), "x", f"{server.address}/team/c:v1", check=False)
        assert refused.returncode != 0 and "quota exceeded" in refused.stderr, refused.stderr


def _unheld_layout(base: Path) -> Path:
    """A layout holding one image (tag `x`) of a layer no repository holds, larger than the room left."""
    noise = b"".join(hashlib.sha256(f"other {i}".encode()).digest() for i in range(64))
    write_layout(base, ImageSpec([layer([file("other.bin", noise)])]), tag="x")
    return base
