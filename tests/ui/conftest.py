"""Real registries for the UI tests: one without auth, one with htpasswd users and rules, each
on its own port with images pushed through the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from tests.servers import RegistryProcess, start_registry
from tests.ui.images import Fixture, populate, push_image

PASSWORDS = {"admin": "admin-pw", "reader": "reader-pw", "pusher": "pusher-pw"}
ACCESS: dict[str, Any] = {
    "admins": ["user:admin"],
    "rules": [
        {"repositories": ["team/*"], "who": ["user:reader"], "actions": ["pull"]},
        {"repositories": ["team/*"], "who": ["user:pusher"], "actions": ["push"]},
        {"repositories": ["public/*"], "who": ["anonymous"], "actions": ["pull"]},
    ],
}


@dataclass
class Served:
    server: RegistryProcess
    fixture: Fixture

    @property
    def url(self) -> str:
        return self.server.url


def _config(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def open_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("ui-open")
    server = start_registry(base / "data", config=_config(base, {"ui": {"title": "Test Yard"}}))
    try:
        with httpx.Client(base_url=server.url) as client:
            fixture = populate(client)
        yield Served(server, fixture)
    finally:
        server.stop()


def write_users(directory: Path) -> Path:
    users = HtpasswdFile(directory / "htpasswd", rounds=4)  # bcrypt's lowest cost: the format is the real one
    for user, password in PASSWORDS.items():
        users.set_password(user, password)
    return users.path


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("ui-auth")
    config = {"auth": {"htpasswd": {"path": str(write_users(base))}, "access": ACCESS}}
    server = start_registry(base / "data", config=_config(base, config))
    try:
        with httpx.Client(base_url=server.url, auth=("admin", PASSWORDS["admin"])) as client:
            fixture = populate(client)
            push_image(client, "public/tools", "stable", (b"public tools layer",))
        yield Served(server, fixture)
    finally:
        server.stop()
