from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from registry.config import ConfigError, load_config, parse_duration
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# Should a start wrongly succeed, one worker on a free port dies with the timeout, leaving nothing behind.
ONE_WORKER = ("--workers", "1", "--host", "127.0.0.1", "--port", str(free_port()))


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
    path.write_text("health:\n  storagedriver:\n    enabled: true\nredis:\n  addr: localhost:6379\n")
    with caplog.at_level(logging.WARNING):
        load_config(path, {})
    assert "health" in caplog.text and "redis" in caplog.text


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
    assert parse_duration("90") == 90.0  # a bare number is seconds
    for bad in ("1h30", "1..5s", "h", "5x", "-1h", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_example_config_loads() -> None:
    config = load_config(ROOT / "config.example.yaml", {})
    assert config.storage.driver == "filesystem"


def _keys(cls: object, prefix: str = "") -> list[str]:
    import dataclasses
    from typing import get_type_hints

    from typedconfig import dataclass_of

    found = []
    for name, hint in get_type_hints(cls).items():
        dotted = f"{prefix}{name}"
        found.append(dotted)
        inner = dataclass_of(hint)
        if inner is not None and dataclasses.is_dataclass(inner):
            found += _keys(inner, dotted + ".")
    return found


def test_every_key_is_documented_in_the_example() -> None:
    from registry.config import Config

    text = (ROOT / "config.example.yaml").read_text()
    missing = [key for key in _keys(Config) if f"{key.rsplit('.', 1)[-1]}:" not in text]
    assert missing == []


def test_durations_are_parsed_once_at_load(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        "gc:\n  graceperiod: 1h30m\n  interval: 24h\nhttp:\n  draintimeout: 30s\n"
        "storage:\n  maintenance:\n    uploadpurging:\n      age: 168h\n"
        "auth:\n  loginlimit:\n    window: 90s\n"
    )
    config = load_config(path, {})
    assert config.gc.graceperiod == 5400.0
    assert config.gc.interval == 86400.0
    assert config.http.draintimeout == 30.0
    assert config.storage.maintenance.uploadpurging.age == 168 * 3600.0
    assert config.auth.loginlimit.window == 90.0
    assert load_config(None, {}).gc.interval == 0.0  # empty: the server never collects by itself


@pytest.mark.parametrize(
    "key",
    [
        "gc.graceperiod",
        "gc.interval",
        "storage.maintenance.uploadpurging.age",
        "storage.maintenance.uploadpurging.interval",
        "http.draintimeout",
        "auth.loginlimit.window",
        "auth.token.leeway",
        "auth.tokenserver.expiration",
    ],
)
def test_bad_duration_names_the_key(key: str) -> None:
    env = {f"DOCKYARD_{key.upper().replace('.', '_')}": "banana"}
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', '[.]')}: invalid duration 'banana'"):
        load_config(None, env)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("gc:\n  graceperiod: banana\n", "gc.graceperiod"),
        ("storage:\n  maintenance:\n    uploadpurging:\n      age: banana\n", "storage.maintenance.uploadpurging.age"),
    ],
)
def test_serve_with_bad_duration_stops_with_one_line(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", *ONE_WORKER, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "banana" in lines[0], result.stderr


def test_exactly_one_storage_driver(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("storage:\n  filesystem:\n    rootdirectory: /x\n  s3:\n    bucket: b\n")
    with pytest.raises(ConfigError, match="storage: configure exactly one driver, not filesystem and s3"):
        load_config(path, {})
    # The environment counts too, as in distribution.
    with pytest.raises(ConfigError, match="exactly one driver"):
        load_config(None, {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/x", "REGISTRY_STORAGE_INMEMORY": ""})
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", *ONE_WORKER, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2 and "exactly one driver" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("storage:\n  gcs:\n    bucket: b\n", "storage.gcs"),
        ("storage:\n  azure:\n    accountname: a\n", "storage.azure"),
        ("auth:\n  silly:\n    realm: r\n", "auth.silly"),
        ("http:\n  tls:\n    letsencrypt:\n      cachefile: /x\n", "http.tls.letsencrypt"),
    ],
)
def test_keys_that_cannot_be_skipped_are_refused(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{key.replace('.', '[.]')}: Dockyard"):
        load_config(path, {})


def test_refused_keys_are_refused_from_the_environment_too() -> None:
    with pytest.raises(ConfigError, match=r"REGISTRY_AUTH_SILLY_REALM: auth\.silly: Dockyard has no silly auth"):
        load_config(None, {"REGISTRY_AUTH_SILLY_REALM": "r"})
    with pytest.raises(ConfigError, match=r"storage\.gcs"):
        load_config(None, {"REGISTRY_STORAGE_GCS_BUCKET": "b"})


def test_unimplemented_keys_are_each_named_in_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from registry.config import UNIMPLEMENTED_KEYS

    data: dict[str, object] = {}
    for dotted in UNIMPLEMENTED_KEYS:
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[last] = {"x": 1} if "." not in dotted else "x"
    import yaml

    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.WARNING):
        load_config(path, {})
    for dotted in UNIMPLEMENTED_KEYS:
        assert f"config key {dotted} is a distribution key that Dockyard does not implement" in caplog.text


def test_each_package_owns_its_options() -> None:
    from auth.config import AuthConfig
    from storage_backends.options import FilesystemOptions, S3Options

    config = load_config(None, {"REGISTRY_STORAGE_S3_BUCKET": "b"})
    assert isinstance(config.auth, AuthConfig)
    assert isinstance(config.storage.s3, S3Options)
    assert isinstance(load_config(None, {}).storage.driver_options, FilesystemOptions)


def test_auth_and_backends_do_not_import_the_registry() -> None:
    code = (
        "import sys, auth, auth.config, auth.factory, auth.basic, auth.bearer, auth.tokenserver, auth.rules, "
        "auth.cli, auth.htpasswd, storage_backends.filesystem, storage_backends.memory, storage_backends.s3, "
        "storage_backends.options, typedconfig\n"
        "print(sorted(m for m in sys.modules if m == 'registry' or m.startswith('registry.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DOCKYARD_HTTP_ADDR": "127.0.0.1:abc"}, "is not host:port"),
        ({"DOCKYARD_HTTP_ADDR": "localhost"}, "is not host:port"),
        ({"DOCKYARD_HTTP_NET": "unix", "DOCKYARD_HTTP_ADDR": "relative.sock"}, "absolute path"),
    ],
)
def test_bad_listen_address_names_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^http\.addr: .*{message}"):
        load_config(None, env)
