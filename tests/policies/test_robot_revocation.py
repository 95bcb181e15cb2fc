"""A revoked (or expired, or replaced) robot's bearer tokens stop working at its next request, not
when the tokens expire: on the replica that issued them and on another sharing the store and the
robots file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from tests.policies.common import blob, dockyard, image
from tests.servers import RegistryProcess, running_registry

pytestmark = pytest.mark.e2e

SCOPE = "repository:team/app:pull,push"


def _config(tmp_path: Path) -> Path:
    HtpasswdFile(tmp_path / "htpasswd", rounds=4).set_password("admin", "admin-password")
    auth = {
        "htpasswd": {"path": str(tmp_path / "htpasswd")},
        "robots": {"path": str(tmp_path / "robots.json")},
        "token": {"service": "registry.test", "issuer": "dockyard-test"},
        "tokenserver": {"path": "/auth/token", "expiration": 3600},
    }
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"auth": auth}))
    return config


def _token(server: RegistryProcess, user: str, password: str) -> str:
    answer = httpx.get(
        f"{server.url}/auth/token", params={"service": "registry.test", "scope": SCOPE}, auth=(user, password)
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    assert isinstance(token, str)
    return token


def _tags(server: RegistryProcess, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v2/team/app/tags/list", headers={"Authorization": f"Bearer {token}"})


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["errors"][0]
    assert error["code"] == "UNAUTHORIZED" and "revoked" in error["message"], error
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_revoked_robot_token_is_refused_at_once_on_every_replica(tmp_path: Path) -> None:
    config = _config(tmp_path)
    robot = ["robot", "add", "ci", "--scope", "team/*:pull,push", "--config", str(config)]
    secret = dockyard(*robot).stdout.strip()
    data = tmp_path / "data"
    with running_registry(data, config=config) as one, running_registry(data, config=config) as two:
        token = _token(one, "robot$ci", secret)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=two.url, headers=headers) as ci:
            assert image(ci, "team/app", "v1", b"robot layer").response.status_code == 201
        assert _tags(one, token).json()["tags"] == ["v1"]
        assert _tags(two, token).json()["tags"] == ["v1"]
        admin = _token(one, "admin", "admin-password")  # its scope is whatever auth.access gives admin

        dockyard("robot", "rm", "ci", "--config", str(config))
        for server in (one, two):
            _refused(_tags(server, token))
            with httpx.Client(base_url=server.url, headers=headers) as ci:
                _refused(blob(ci, "team/app", b"after revocation"))
        admin_tags = httpx.get(f"{one.url}/v2/team/app/tags/list", headers={"Authorization": f"Bearer {admin}"})
        assert admin_tags.status_code == 200  # other subjects' tokens are untouched

        # Re-created under the same name: the old token stays dead, the new robot's work.
        secret = dockyard(*robot).stdout.strip()
        for server in (one, two):
            _refused(_tags(server, token))
        fresh = _token(two, "robot$ci", secret)
        assert _tags(one, fresh).json()["tags"] == ["v1"]

        # Expired while its token is still good: refused from then on.
        brief = dockyard("robot", "add", "brief", "--scope", "team/*:pull", "--expires", "2s", "--config", str(config))
        short = _token(one, "robot$brief", brief.stdout.strip())
        assert _tags(two, short).status_code == 200
        expires = json.loads((tmp_path / "robots.json").read_text())["robots"]["brief"]["expires"]
        time.sleep(max(0.0, expires - time.time()) + 0.1)
        for server in (one, two):
            _refused(_tags(server, short))
