"""`dockyard login`, `logout` and pulling with credentials: Basic against distribution's htpasswd mode, bearer
tokens from Dockyard's token server."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from tests.imagebuild import ImageSpec, busybox_entries, file, layer, push, write_layout
from tests.runtime_images.conftest import Cli, Registry, start_distribution, start_dockyard

pytestmark = [pytest.mark.e2e, pytest.mark.privileged]

USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def _spec() -> ImageSpec:
    # Built when a test runs, not at import: without busybox-static the tests skip instead of failing to collect.
    return ImageSpec([layer(busybox_entries(["sh", "cat"])), layer([file("etc/motd", b"private\n")])])


def _users(directory: Path) -> Path:
    path = directory / "htpasswd"
    users = HtpasswdFile(path, rounds=4)  # bcrypt, at its lowest cost to keep the test quick
    for user, password in USERS.items():
        users.set_password(user, password)
    return path


def _push(tmp_path: Path, registry: Registry, repo_tag: str, user: str = "alice") -> str:
    layout = tmp_path / "layout"
    write_layout(layout, _spec(), tag="t")
    ref = f"{registry.address}/{repo_tag}"
    push(layout, "t", ref, creds=f"{user}:{USERS[user]}")
    return ref


def _login_flow(dockyard: Cli, registry: Registry, ref: str) -> None:
    anonymous = dockyard("pull", ref, check=False)
    assert anonymous.returncode == 1
    assert "unauthorized" in anonymous.stderr or "denied" in anonymous.stderr

    wrong = dockyard("login", "-u", "alice", "--password-stdin", registry.address, input="nope\n", check=False)
    assert wrong.returncode == 1 and "Login Succeeded" not in wrong.stdout
    assert not (dockyard.root / "config.json").exists()

    ok = dockyard("login", "-u", "alice", "--password-stdin", registry.address, input="alice-pw\n")
    assert "Login Succeeded" in ok.stdout
    config = dockyard.root / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    stored = json.loads(config.read_text())["auths"][registry.address]["auth"]
    assert base64.b64decode(stored) == b"alice:alice-pw"

    dockyard("pull", ref)

    out = dockyard("logout", registry.address).stdout
    assert out.strip() == f"Removing login credentials for {registry.address}"
    assert registry.address not in json.loads(config.read_text())["auths"]
    assert dockyard("logout", registry.address).stdout.strip() == f"Not logged in to {registry.address}"
    again = dockyard("pull", ref, check=False)
    assert again.returncode == 1


def test_basic_auth_against_distribution(tmp_path: Path, dockyard: Cli) -> None:
    registry = start_distribution(tmp_path / "distribution", htpasswd=_users(tmp_path))
    try:
        ref = _push(tmp_path, registry, "private/app:v1")
        _login_flow(dockyard, registry, ref)
    finally:
        registry.stop()


def test_token_auth_against_dockyard(tmp_path: Path, dockyard: Cli) -> None:
    base = tmp_path / "dockyard"
    base.mkdir()
    config = base / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"filesystem": {"rootdirectory": str(base / "storage")}, "delete": {"enabled": True}},
                "auth": {
                    "htpasswd": {"realm": "Dockyard", "path": str(_users(tmp_path))},
                    "token": {"service": "dockyard-test", "issuer": "dockyard-test"},
                    "tokenserver": {"path": "/auth/token"},
                    "access": {
                        "rules": [
                            {"repositories": ["team/*"], "who": ["user:alice"], "actions": ["pull", "push"]},
                        ]
                    },
                },
            }
        )
    )
    registry = start_dockyard(base, config=config)
    try:
        ref = _push(tmp_path, registry, "team/app:v1")
        challenge = dockyard("pull", ref, check=False)
        assert challenge.returncode == 1
        _login_flow(dockyard, registry, ref)
        # Bob's password is right, but the rules give him nothing in team/*: the token carries no access.
        dockyard("login", "-u", "bob", "--password-stdin", registry.address, input="bob-pw\n")
        denied = dockyard("pull", ref, check=False)
        assert denied.returncode == 1
        assert "denied" in denied.stderr or "unauthorized" in denied.stderr
        assert "GET /auth/token 200" in registry.log.read_text()  # the bearer handshake, not Basic
    finally:
        registry.stop()
