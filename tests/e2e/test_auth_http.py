"""Two users in two teams against a real `dockyard serve`, over plain HTTP as a new user would
try it: read, push and mount across teams, in htpasswd and in token mode. Also the refusals a
hostile client can provoke (never a 500), the failed-login limit, and logs free of secrets."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import httpx
import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from tests.servers import RegistryProcess, start_registry

pytestmark = pytest.mark.e2e

PASSWORDS = {"alice": "alice-http-secret", "bob": "bob-http-secret"}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module", params=["htpasswd", "token"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    # One server per mode for the module; the failed-login test comes last, as it locks the address out.
    tmp_path = tmp_path_factory.mktemp(f"auth-http-{request.param}")
    users = HtpasswdFile(tmp_path / "htpasswd", rounds=4)
    for user, password in PASSWORDS.items():
        users.set_password(user, password)
    auth = {
        "htpasswd": {"path": str(tmp_path / "htpasswd")},
        "loginlimit": {"failures": 4, "window": "1m"},
        "access": {
            "groups": {"team-a": ["alice"], "team-b": ["bob"]},
            "rules": [
                {"repositories": ["team-a/*"], "who": ["group:team-a"], "actions": ["*"]},
                {"repositories": ["team-b/*"], "who": ["group:team-b"], "actions": ["*"]},
            ],
        },
    }
    if request.param == "token":
        auth["tokenserver"] = {}
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"auth": auth}))
    process = start_registry(tmp_path / "data", config=config)
    process.mode = request.param  # type: ignore[attr-defined]
    yield process
    process.stop()


class User:
    def __init__(self, server: RegistryProcess, name: str) -> None:
        self.server, self.name, self.secrets = server, name, [PASSWORDS[name]]

    def headers(self, *scopes: str) -> dict[str, str]:
        """What a client sends: Basic credentials, or a token fetched for exactly these scopes."""
        if self.server.mode == "htpasswd":  # type: ignore[attr-defined]
            return {
                "Authorization": "Basic " + base64.b64encode(f"{self.name}:{PASSWORDS[self.name]}".encode()).decode()
            }
        r = httpx.get(
            f"{self.server.url}/auth/token",
            params=[("service", "dockyard"), *[("scope", s) for s in scopes]],
            auth=(self.name, PASSWORDS[self.name]),
        )
        assert r.status_code == 200, r.text
        self.secrets.append(r.json()["token"])
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def push_blob(self, repo: str, data: bytes) -> int:
        h = self.headers(f"repository:{repo}:pull,push")
        r = httpx.post(f"{self.server.url}/v2/{repo}/blobs/uploads/", headers=h)
        if r.status_code != 202:
            return r.status_code
        location = httpx.URL(self.server.url).join(r.headers["location"])
        r = httpx.put(location, params={"digest": digest(data)}, content=data, headers=h)
        return r.status_code


def test_two_teams_cannot_reach_each_other(server: RegistryProcess) -> None:
    alice, bob = User(server, "alice"), User(server, "bob")
    url = server.url
    secret_a, secret_b = b"alice's layer", b"bob's layer"
    assert alice.push_blob("team-a/app", secret_a) == 201
    assert bob.push_blob("team-b/app", secret_b) == 201
    for me, other_repo, blob in ((bob, "team-a/app", secret_a), (alice, "team-b/app", secret_b)):
        h = me.headers(f"repository:{other_repo}:pull")
        assert httpx.get(f"{url}/v2/{other_repo}/blobs/{digest(blob)}", headers=h).status_code in (401, 403)
        assert httpx.get(f"{url}/v2/{other_repo}/tags/list", headers=h).status_code in (401, 403)
        assert me.push_blob(other_repo, b"intruder") in (401, 403)
        own = "team-b/app" if other_repo == "team-a/app" else "team-a/app"
        h = me.headers(f"repository:{own}:pull,push", f"repository:{other_repo}:pull")
        r = httpx.post(f"{url}/v2/{own}/blobs/uploads/", params={"mount": digest(blob), "from": other_repo}, headers=h)
        assert r.status_code == 202  # an ordinary upload, not a mount
        h = me.headers(f"repository:{own}:pull")
        assert httpx.head(f"{url}/v2/{own}/blobs/{digest(blob)}", headers=h).status_code == 404
        # The catalog shows only their own team's repository.
        h = me.headers("registry:catalog:*")
        assert httpx.get(f"{url}/v2/_catalog", headers=h).json()["repositories"] == [own]
    logs = server.logs()
    for user in (alice, bob):
        for secret in user.secrets:
            assert secret not in logs


HOSTILE = [
    "Basic",
    "Basic !!!!",
    "Basic " + base64.b64encode(b"justuser").decode(),
    "Basic =",
    "Basic " + base64.b64encode(b"\xc3\x28:\xa0").decode(),
    "Bearer",
    "Bearer a.b.c",
    "Bearer ....",
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.",
    "Bearer " + "A" * 8000,
    "Digest x",
    "x",
]


def test_hostile_authorization_headers_get_401(server: RegistryProcess) -> None:
    for authorization in HOSTILE:
        for path in ("/v2/", "/v2/team-a/app/tags/list", "/v2/_catalog"):
            r = httpx.get(f"{server.url}{path}", headers={"Authorization": authorization})
            assert r.status_code == 401, (authorization[:40], path, r.status_code, r.text)
            assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
            assert "www-authenticate" in r.headers


def test_failed_logins_are_limited(server: RegistryProcess) -> None:
    path = "/auth/token" if server.mode == "token" else "/v2/"  # type: ignore[attr-defined]
    for _ in range(4):
        assert httpx.get(f"{server.url}{path}", auth=("alice", "guess")).status_code == 401
    r = httpx.get(f"{server.url}{path}", auth=("alice", PASSWORDS["alice"]))
    assert r.status_code == 429
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(r.headers["retry-after"]) > 0
    assert "guess" not in server.logs()
