from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from registry.config import ConfigError, load_config, parse_duration

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_embedded_registry() -> None:
    config = load_config(None, {})
    assert config.storage.driver == "filesystem"
    assert config.storage.driver_options.rootdirectory == "./data"
    assert config.host_port == ("127.0.0.1", 5000)
    assert config.auth.mode == "none"


def test_distribution_config_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        """
version: 0.1
log:
  level: warn
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  secret: asecretforlocaldevelopment
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""
    )
    config = load_config(path, {})
    assert config.storage.filesystem is not None
    assert config.storage.filesystem.rootdirectory == "/var/lib/registry"
    assert config.storage.delete.enabled is True
    assert config.host_port == ("0.0.0.0", 5000)
    assert config.log.level == "warn"


def test_environment_overrides_in_both_forms() -> None:
    env = {
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/srv/a",
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "DOCKYARD_HTTP_ADDR": "127.0.0.2:6000",
        "REGISTRY_HTTP_ADDR": "0.0.0.0:7000",
    }
    config = load_config(None, env)
    assert config.storage.driver_options.rootdirectory == "/srv/a"
    assert config.storage.delete.enabled is True
    assert config.host_port == ("127.0.0.2", 6000)  # DOCKYARD_ wins over REGISTRY_


def test_s3_section_selects_s3() -> None:
    config = load_config(None, {"REGISTRY_STORAGE_S3_BUCKET": "b", "REGISTRY_STORAGE_S3_REGION": "eu-west-1"})
    assert config.storage.driver == "s3"
    assert config.storage.driver_options.bucket == "b"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("storage:\n  filesystem:\n    rootdir: /x\n", "storage.filesystem.rootdir"),
        ("storage:\n  delete:\n    enabled: maybe\n", "storage.delete.enabled"),
        ("http:\n  addr: [1, 2]\n", "http.addr"),
        ("log:\n  level: loud\n", "log.level"),
        ("bogus: 1\n", "bogus"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        load_config(path, {})


def test_unimplemented_distribution_keys_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.yml"
    path.write_text("notifications:\n  endpoints: []\nredis:\n  addr: localhost:6379\n")
    with caplog.at_level(logging.WARNING):
        load_config(path, {})
    assert "notifications" in caplog.text and "redis" in caplog.text


def test_serve_with_bad_config_prints_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("storage:\n  filesystem:\n    rootdir: /x\n")
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 2
    assert "storage.filesystem.rootdir" in result.stderr
    assert "Traceback" not in result.stderr


def test_durations() -> None:
    assert parse_duration("168h") == 168 * 3600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_example_config_loads() -> None:
    config = load_config(ROOT / "config.example.yaml", {})
    assert config.storage.driver == "filesystem"


def _keys(cls: object, prefix: str = "") -> list[str]:
    import dataclasses
    from typing import get_type_hints

    from registry.config import _dataclass_of

    found = []
    for name, hint in get_type_hints(cls).items():
        dotted = f"{prefix}{name}"
        found.append(dotted)
        inner = _dataclass_of(hint)
        if inner is not None and dataclasses.is_dataclass(inner):
            found += _keys(inner, dotted + ".")
    return found


def test_every_key_is_documented_in_the_example() -> None:
    from registry.config import Config

    text = (ROOT / "config.example.yaml").read_text()
    missing = [key for key in _keys(Config) if f"{key.rsplit('.', 1)[-1]}:" not in text]
    assert missing == []
