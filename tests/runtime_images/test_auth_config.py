"""Credentials stored like Docker's config.json."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from oci.client import Credentials
from runtime import auth_config


def test_store_read_remove(tmp_path: Path) -> None:
    creds = Credentials("alice", "s3cret:with:colons")
    auth_config.store_credentials(tmp_path, "127.0.0.1:5000", creds)
    path = tmp_path / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert base64.b64decode(data["auths"]["127.0.0.1:5000"]["auth"]) == b"alice:s3cret:with:colons"
    assert auth_config.get_credentials(tmp_path, "127.0.0.1:5000") == creds
    assert auth_config.get_credentials(tmp_path, "127.0.0.1:5001") is None
    assert auth_config.remove_credentials(tmp_path, "127.0.0.1:5000")
    assert auth_config.get_credentials(tmp_path, "127.0.0.1:5000") is None
    assert not auth_config.remove_credentials(tmp_path, "127.0.0.1:5000")


def test_reads_docker_written_keys(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
                    "https://registry.example.com:5000": {"username": "u", "password": "p"},
                },
                "insecure-registries": ["10.0.0.5:5000"],
                "credsStore": "ignored",
            }
        )
    )
    assert auth_config.get_credentials(tmp_path, "docker.io") == Credentials("hub", "pw")
    assert auth_config.get_credentials(tmp_path, "registry.example.com:5000") == Credentials("u", "p")
    assert auth_config.insecure_registries(tmp_path) == {"10.0.0.5:5000"}
    # Storing keeps what it does not own.
    auth_config.store_credentials(tmp_path, "docker.io", Credentials("hub2", "pw2"))
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["credsStore"] == "ignored"
    assert list(data["auths"]) == ["https://registry.example.com:5000", "https://index.docker.io/v1/"]


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(auth_config.AuthConfigError):
        auth_config.get_credentials(tmp_path, "x")
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"h": {"auth": "bm9jb2xvbg=="}}}))  # "nocolon"
    with pytest.raises(auth_config.AuthConfigError):
        auth_config.get_credentials(tmp_path, "h")
