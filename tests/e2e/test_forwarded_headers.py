"""`X-Forwarded-*` against a real `dockyard serve`: untrusted unless `http.trustforwardedheaders`.

uvicorn by default believes X-Forwarded-For from 127.0.0.1, so a same-host proxy that passes its
clients' headers on would let each request pick its own address, and rotate its way past the
per-address login limit."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from tests.servers import running_registry

pytestmark = pytest.mark.e2e


def _config(tmp_path: Path, trust: bool) -> Path:
    users = HtpasswdFile(tmp_path / "htpasswd", rounds=4)
    users.set_password("alice", "alice-secret")
    config = tmp_path / "config.yml"
    auth = {"htpasswd": {"path": str(tmp_path / "htpasswd")}, "loginlimit": {"failures": 3, "window": "5m"}}
    config.write_text(yaml.safe_dump({"auth": auth, "http": {"trustforwardedheaders": trust}}))
    return config


def _guess_from_rotating_addresses(url: str) -> None:
    for i in range(3):
        r = httpx.get(f"{url}/v2/", auth=(f"user{i}", "guess"), headers={"X-Forwarded-For": f"10.0.0.{i}"})
        assert r.status_code == 401


@pytest.mark.parametrize("trust", [False, True])
def test_forwarded_for_changes_the_limited_address_only_when_trusted(tmp_path: Path, trust: bool) -> None:
    with running_registry(tmp_path / "data", config=_config(tmp_path, trust)) as server:
        _guess_from_rotating_addresses(server.url)
        r = httpx.get(f"{server.url}/v2/", auth=("alice", "alice-secret"), headers={"X-Forwarded-For": "10.9.9.9"})
        if trust:
            assert r.status_code == 200  # behind a trusted proxy each client has its own address
        else:
            # Every request came from 127.0.0.1, whatever the header said: that address is limited.
            assert r.status_code == 429, r.text
            assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
