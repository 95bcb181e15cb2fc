"""Fixtures for the auth tests: a user file, a rules set for two teams, and apps in each auth mode."""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from registry.app import create_app
from registry.config import Config, load_config
from storage_backends.memory import MemoryBackend

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "root": "root-pw"}

ACCESS: dict[str, Any] = {
    "groups": {"team-a": ["alice"], "team-b": ["bob"]},
    "admins": ["user:root"],
    "rules": [
        {"repositories": ["team-a/*"], "who": ["group:team-a"], "actions": ["pull", "push", "delete"]},
        {"repositories": ["team-b/*"], "who": ["group:team-b"], "actions": ["pull", "push", "delete"]},
        {"repositories": ["public/*"], "who": ["anonymous"], "actions": ["pull"]},
        {"repositories": ["public/*"], "who": ["authenticated"], "actions": ["push"]},
    ],
}


@functools.cache
def _htpasswd_text() -> str:
    # Hashing at bcrypt's lowest cost once per session keeps the suite fast; the format is the real one.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        users = HtpasswdFile(Path(tmp) / "htpasswd", rounds=4)
        for user, password in PASSWORDS.items():
            users.set_password(user, password)
        return (Path(tmp) / "htpasswd").read_text()


def write_users(directory: Path) -> Path:
    path = directory / "htpasswd"
    path.write_text(_htpasswd_text())
    path.chmod(0o600)
    return path


def auth_config(tmp_path: Path, mode: str, **extra: Any) -> Config:
    """A config in `mode` ('htpasswd' or 'token'), storage in memory, rules for two teams."""
    auth: dict[str, Any] = {
        "htpasswd": {"realm": "Dockyard Test", "path": str(write_users(tmp_path))},
        "access": ACCESS,
        "loginlimit": {"failures": 5, "window": "1m"},
    }
    if mode == "token":
        auth["token"] = {"service": "registry.test", "issuer": "dockyard-test"}
        auth["tokenserver"] = {"path": "/auth/token"}
    data: dict[str, Any] = {"storage": {"inmemory": None, "delete": {"enabled": True}}, "auth": auth}
    for dotted, value in extra.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, {})


def basic(user: str, password: str | None = None) -> dict[str, str]:
    secret = PASSWORDS.get(user, "") if password is None else password
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make(mode: str, **extra: Any) -> httpx.AsyncClient:
        app = create_app(auth_config(tmp_path, mode, **extra), backend=MemoryBackend())
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def token_for(client: httpx.AsyncClient, user: str | None, *scopes: str) -> str:
    headers = basic(user) if user else {}
    params = [("service", "registry.test"), *[("scope", s) for s in scopes]]
    r = await client.get("/auth/token", params=params, headers=headers)
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def push_blob(client: httpx.AsyncClient, name: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
    r = await client.post(f"/v2/{name}/blobs/uploads/", headers=headers)
    if r.status_code != 202:
        return r
    return await client.put(r.headers["location"], params={"digest": digest_of(data)}, content=data, headers=headers)
