"""The audit log against a real server on a real port: what each push, delete, mount, login and
denied request writes, to a file (also from two worker processes at once) or to stderr."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from auth.robots import RobotFile, Scope
from tests.conftest import require_tool
from tests.servers import ROOT, free_port, running_registry

pytestmark = pytest.mark.e2e

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}
ACCESS: dict[str, Any] = {
    "rules": [
        {"repositories": ["team-a/**"], "who": ["user:alice"], "actions": ["pull", "push", "delete"]},
        {"repositories": ["team-b/**"], "who": ["user:alice", "user:bob"], "actions": ["pull", "push"]},
    ],
}
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_config(tmp_path: Path, **sections: Any) -> Path:
    users = tmp_path / "htpasswd"
    if not users.exists():
        htpasswd = HtpasswdFile(users, rounds=4)
        for user, password in PASSWORDS.items():
            htpasswd.set_password(user, password)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(sections))
    return path


def auth_section(tmp_path: Path, mode: str, **extra: Any) -> dict[str, Any]:
    auth: dict[str, Any] = {"htpasswd": {"path": str(tmp_path / "htpasswd")}, "access": ACCESS, **extra}
    if mode == "token":
        auth["token"] = {"service": "registry.test"}
        auth["tokenserver"] = {"path": "/auth/token"}
    return auth


def records(text: str) -> list[dict[str, Any]]:
    """The audit lines of a file or of a server's output (where log lines are text)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if "action" in record and "request_id" in record:
                found.append(record)
    return found


def token(client: httpx.Client, user: str, password: str, *scopes: str, **headers: str) -> httpx.Response:
    params = httpx.QueryParams([("service", "registry.test"), *(("scope", scope) for scope in scopes)])
    return client.get("/auth/token", params=params, auth=(user, password), headers=headers)


def push_blob(client: httpx.Client, name: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
    started = client.post(f"/v2/{name}/blobs/uploads/", headers=headers)
    assert started.status_code == 202, started.text
    return client.put(started.headers["location"], params={"digest": digest_of(data)}, content=data, headers=headers)


def manifest_for(config: bytes, layer: bytes) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(layer), "size": len(layer)}
            ],
        }
    ).encode()


def push_image(client: httpx.Client, name: str, tag: str, layer: bytes, headers: dict[str, str]) -> httpx.Response:
    config = b'{"architecture":"amd64"}'
    for data in (config, layer):
        assert push_blob(client, name, data, headers).status_code == 201
    return client.put(
        f"/v2/{name}/manifests/{tag}",
        content=manifest_for(config, layer),
        headers={**headers, "Content-Type": MANIFEST_TYPE},
    )


def test_token_mode_push_mount_delete_login_and_denials(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    config = write_config(
        tmp_path,
        auth=auth_section(tmp_path, "token"),
        http={"trustforwardedheaders": True},
        storage={"delete": {"enabled": True}},
        audit={"enabled": True, "path": str(log)},
    )
    layer = b"layer one"
    with running_registry(tmp_path / "data", config=config) as server, httpx.Client(base_url=server.url) as client:
        scope = "repository:team-a/app:pull,push,delete"
        granted = token(client, "alice", "alice-pw", scope, **{"User-Agent": "docker/27.0 (audit test)"})
        assert granted.status_code == 200
        wrong = token(client, "alice", "not-her-password", scope, **{"X-Forwarded-For": "203.0.113.9"})
        assert wrong.status_code == 401
        alice = {"Authorization": f"Bearer {granted.json()['token']}", "User-Agent": "docker/27.0 (audit test)"}
        pushed = push_image(client, "team-a/app", "v1", layer, alice)
        assert pushed.status_code == 201, pushed.text
        assert client.get("/v2/team-a/app/manifests/v1", headers=alice).status_code == 200  # a pull: not audited
        mount_token = token(
            client, "alice", "alice-pw", "repository:team-a/copy:pull,push", "repository:team-a/app:pull"
        )
        mount_token = mount_token.json()["token"]
        mounting = {"Authorization": f"Bearer {mount_token}"}
        mounted = client.post(
            "/v2/team-a/copy/blobs/uploads/", params={"mount": digest_of(layer), "from": "team-a/app"}, headers=mounting
        )
        assert mounted.status_code == 201
        assert client.delete("/v2/team-a/app/manifests/v1", headers=alice).status_code == 202
        assert client.delete(f"/v2/team-a/app/blobs/{digest_of(layer)}", headers=alice).status_code == 202
        assert client.get("/v2/team-a/app/tags/list").status_code == 401  # anonymous
        assert client.get("/v2/").status_code == 401  # the handshake: not audited
    lines = records(log.read_text())
    expected = ["login", "denied", "push", "push", "push", "login", "mount", "delete", "delete", "denied"]
    assert [r["action"] for r in lines] == expected
    login, denied_login = lines[0], lines[1]
    assert login["action"] == "login" and login["user"] == "alice" and login["via"] == "token"
    assert login["address"] == "127.0.0.1" and login["useragent"] == "docker/27.0 (audit test)"
    assert login["time"].endswith("Z") and login["request_id"]
    assert denied_login["action"] == "denied" and denied_login["attempted"] == "login"
    assert denied_login["user"] == "alice" and not denied_login["authenticated"]
    assert denied_login["address"] == "203.0.113.9" and denied_login["status"] == 401
    pushes = [r for r in lines if r["action"] == "push"]
    assert [p.get("digest") for p in pushes[:2]] == [digest_of(b'{"architecture":"amd64"}'), digest_of(layer)]
    assert pushes[1]["size"] == len(layer) and pushes[1]["repository"] == "team-a/app"
    manifest = pushes[2]
    assert manifest["user"] == "alice" and manifest["tags"] == ["v1"] and manifest["reference"] == "v1"
    assert manifest["mediatype"] == MANIFEST_TYPE and manifest["status"] == 201
    assert manifest["digest"] == pushed.headers["docker-content-digest"]
    assert manifest["size"] == len(manifest_for(b'{"architecture":"amd64"}', layer))
    assert all(p["user"] == "alice" and p["authenticated"] for p in pushes)
    (mount,) = [r for r in lines if r["action"] == "mount"]
    assert mount["repository"] == "team-a/copy" and mount["from"] == "team-a/app"
    assert mount["digest"] == digest_of(layer) and mount["size"] == len(layer) and mount["user"] == "alice"
    deletes = [r for r in lines if r["action"] == "delete"]
    assert [(d.get("tags"), d.get("digest")) for d in deletes] == [(["v1"], None), (None, digest_of(layer))]
    anonymous = lines[-1]
    assert anonymous["action"] == "denied" and anonymous["attempted"] == "pull"
    assert anonymous["actor"] == "anonymous" and anonymous["user"] is None
    assert anonymous["repository"] == "team-a/app" and anonymous["error"]["code"] == "UNAUTHORIZED"


def test_skopeo_login_and_copy(tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    log = tmp_path / "audit.log"
    config = write_config(tmp_path, auth=auth_section(tmp_path, "token"), audit={"enabled": True, "path": str(log)})
    auth_file = tmp_path / "auth.json"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [skopeo, *args]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            env={"REGISTRY_AUTH_FILE": str(auth_file), "HOME": str(tmp_path)},
        )

    with running_registry(tmp_path / "data", config=config) as server:
        with httpx.Client(base_url=server.url) as client:
            granted = token(client, "alice", "alice-pw", "repository:team-a/src:pull,push").json()["token"]
            source = push_image(client, "team-a/src", "v1", b"skopeo layer", {"Authorization": f"Bearer {granted}"})
            assert source.status_code == 201
        log.write_text("")  # what follows is skopeo's alone
        refused = run("login", "--tls-verify=false", "-u", "alice", "-p", "wrong", server.address)
        assert refused.returncode != 0
        logged_in = run("login", "--tls-verify=false", "-u", "alice", "-p", "alice-pw", server.address)
        assert logged_in.returncode == 0, logged_in.stderr
        copied = run(
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{server.address}/team-a/src:v1",
            f"docker://{server.address}/team-a/dst:v1",
        )
        assert copied.returncode == 0, copied.stderr
        with httpx.Client(base_url=server.url) as client:
            reader = token(client, "alice", "alice-pw", "repository:team-a/dst:pull").json()["token"]
            copy = client.get("/v2/team-a/dst/manifests/v1", headers={"Authorization": f"Bearer {reader}"})
    lines = records(log.read_text())
    assert lines[0]["action"] == "denied" and lines[0]["user"] == "alice" and lines[0]["attempted"] == "login"
    assert lines[0]["status"] == 401 and lines[0]["address"] == "127.0.0.1"
    assert lines[1]["action"] == "login" and lines[1]["user"] == "alice" and lines[1]["via"] == "token"
    assert all(r["useragent"].startswith("skopeo/") for r in lines[:-1])
    (manifest,) = [r for r in lines if r["action"] == "push" and r.get("tags")]
    assert manifest["repository"] == "team-a/dst" and manifest["tags"] == ["v1"] and manifest["user"] == "alice"
    assert manifest["digest"] == copy.headers["docker-content-digest"] and manifest["size"] == len(copy.content)
    # skopeo compresses the layer on the way: each blob the copy names has its push line, with its size.
    blobs = {r["digest"]: r["size"] for r in lines if r["action"] == "push" and r["mediatype"] == "blob"}
    named = [copy.json()["config"], *copy.json()["layers"]]
    assert blobs == {d["digest"]: d["size"] for d in named}


def test_basic_auth_robot_and_policy_refusals_on_stderr(tmp_path: Path) -> None:
    robots = tmp_path / "robots.json"
    robot_token = RobotFile(robots).add("ci", [Scope.parse("team-b/*:pull,push")], 0)
    config = write_config(
        tmp_path,
        auth=auth_section(
            tmp_path, "htpasswd", robots={"path": str(robots)}, loginlimit={"failures": 2, "window": "1m"}
        ),
        policies={"repositories": [{"repositories": "team-a/*", "immutabletags": ["release-*"]}]},
        quotas={"limits": [{"namespace": "team-b", "maxsize": 1000}]},
        audit={"enabled": True, "path": "-"},
    )
    with running_registry(tmp_path / "data", config=config) as server:
        with httpx.Client(base_url=server.url, auth=("alice", "alice-pw")) as alice:
            assert alice.get("/v2/").status_code == 200  # docker login
            assert push_image(alice, "team-a/app", "release-1", b"one", {}).status_code == 201
            moved = push_image(alice, "team-a/app", "release-1", b"two", {})
            assert moved.status_code == 400 and "immutable" in moved.text
        with httpx.Client(base_url=server.url, auth=("robot$ci", robot_token)) as robot:
            assert robot.get("/v2/").status_code == 200
            assert push_blob(robot, "team-b/app", b"x" * 600, {}).status_code == 201
            refused = push_blob(robot, "team-b/app", b"y" * 600, {})
            assert refused.status_code == 403 and "quota exceeded" in refused.text
        with httpx.Client(base_url=server.url, auth=("bob", "bob-pw")) as bob:
            assert bob.post("/v2/team-a/app/blobs/uploads/").status_code == 403
        with httpx.Client(base_url=server.url, auth=("bob", "wrong")) as wrong:
            assert [wrong.get("/v2/").status_code for _ in range(3)] == [401, 401, 429]
        output = server.logs()
    lines = records(output)
    logins = [r for r in lines if r["action"] == "login"]
    assert [(r["user"], r["actor"], r["via"]) for r in logins] == [
        ("alice", "user", "basic"),
        ("robot$ci", "robot", "basic"),
    ]
    denied = [r for r in lines if r["action"] == "denied"]
    immutable, quota, bob_push, bob_login, _, limited = denied
    assert immutable["policy"] == "immutable" and immutable["status"] == 400 and immutable["user"] == "alice"
    assert immutable["attempted"] == "push" and immutable["reference"] == "release-1"
    assert immutable["error"]["code"] == "TAG_INVALID" and immutable["repository"] == "team-a/app"
    assert quota["policy"] == "quota" and quota["status"] == 403 and quota["user"] == "robot$ci"
    assert quota["actor"] == "robot" and quota["repository"] == "team-b/app" and "quota" in quota["error"]["message"]
    assert bob_push["user"] == "bob" and bob_push["authenticated"] and bob_push["status"] == 403
    assert bob_push["attempted"] == "push" and bob_push["error"]["code"] == "DENIED"
    assert bob_login["user"] == "bob" and not bob_login["authenticated"] and bob_login["status"] == 401
    assert bob_login["address"] == "127.0.0.1"
    assert limited["status"] == 429 and limited["user"] == "bob" and limited["error"]["code"] == "TOOMANYREQUESTS"
    pushes = [r for r in lines if r["action"] == "push"]
    # The image's two blobs and its manifest, the refused image's two blobs (its manifest was the refusal), the robot's.
    assert len(pushes) == 3 + 2 + 1
    assert pushes[-1]["user"] == "robot$ci" and pushes[-1]["size"] == 600


def test_ui_login_and_delete(tmp_path: Path) -> None:
    from tests.ui.test_pages_http import HTML, csrf_of

    log = tmp_path / "audit.log"
    config = write_config(
        tmp_path,
        auth=auth_section(tmp_path, "htpasswd"),
        storage={"delete": {"enabled": True}},
        audit={"enabled": True, "path": str(log)},
    )
    with running_registry(tmp_path / "data", config=config) as server:
        with httpx.Client(base_url=server.url, auth=("alice", "alice-pw")) as api:
            pushed = push_image(api, "team-a/web", "old", b"web layer", {})
            assert pushed.status_code == 201
        with httpx.Client(base_url=server.url, headers=HTML) as browser:
            page = browser.get("/login")
            form = {"csrf": csrf_of(page.text), "username": "alice", "next": "/"}
            assert browser.post("/login", data={**form, "password": "wrong"}).status_code == 401
            assert browser.post("/login", data={**form, "password": "alice-pw"}).status_code == 303
            confirm = browser.get("/r/team-a/web/-/delete", params={"reference": "old"})
            done = browser.post(
                "/r/team-a/web/-/delete",
                data={"reference": "old", "csrf": csrf_of(confirm.text)},
                headers={"Origin": server.url},
            )
            assert done.status_code == 303
    lines = [r for r in records(log.read_text()) if r["action"] != "push"]
    denied, login, delete = lines
    assert denied["action"] == "denied" and denied["attempted"] == "login" and denied["user"] == "alice"
    assert login["action"] == "login" and login["via"] == "ui" and login["user"] == "alice" and login["authenticated"]
    assert (
        delete["action"] == "delete" and delete["via"] == "ui" and delete["user"] == "alice" and delete["authenticated"]
    )
    assert delete["repository"] == "team-a/web" and delete["tags"] == ["old"]
    assert delete["digest"] == pushed.headers["docker-content-digest"]


def _push_many(url: str, worker: int) -> int:
    with httpx.Client(base_url=url) as client:
        for i in range(15):
            data = f"worker {worker} blob {i} ".encode() * 20
            answer = client.post("/v2/many/app/blobs/uploads/", params={"digest": digest_of(data)}, content=data)
            assert answer.status_code == 201
    return 15


def test_two_worker_processes_append_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    config = write_config(tmp_path, audit={"enabled": True, "path": str(log)})
    with running_registry(tmp_path / "data", config=config, workers=2) as server:
        with ThreadPoolExecutor(8) as pool:
            pushed = sum(pool.map(_push_many, [server.url] * 8, range(8)))
    text = log.read_text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]  # every line whole JSON: none interleaved
    assert len(lines) == pushed == 120
    assert {r["action"] for r in lines} == {"push"}
    assert len({r["digest"] for r in lines}) == 120
    assert {r["actor"] for r in lines} == {"anonymous"}


def test_disabled_writes_nothing_and_an_unopenable_file_stops_the_start(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    config = write_config(tmp_path, audit={"enabled": False, "path": str(log)})
    with running_registry(tmp_path / "data", config=config) as server, httpx.Client(base_url=server.url) as client:
        data = b"not audited"
        assert (
            client.post("/v2/a/b/blobs/uploads/", params={"digest": digest_of(data)}, content=data).status_code == 201
        )
        assert client.get("/v2/nothing/here/tags/list").status_code == 404
        output = server.logs()
    assert not log.exists()
    assert "audit.path is set but audit.enabled is false" in output
    assert not records(output)
    bad = write_config(tmp_path, audit={"enabled": True, "path": str(tmp_path / "no-such-dir" / "audit.log")})
    for workers in ("1", "2"):
        started = subprocess.run(
            [sys.executable, "-m", "dockyard", "serve", "--port", str(free_port()), "--workers", workers, str(bad)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started.returncode == 2, started.stderr
        assert "audit.path: cannot open" in started.stderr
