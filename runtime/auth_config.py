"""Registry credentials kept like Docker's `config.json`: `{"auths": {"HOST": {"auth": base64("user:pass")}}}`,
in `<runtime root>/config.json`, mode 0600. The same file may list `"insecure-registries": ["host:port", ...]`,
registries that may be reached over plain HTTP or with unverified TLS."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oci.reference import DEFAULT_REGISTRY

if TYPE_CHECKING:
    from oci.client import Credentials

CONFIG_NAME = "config.json"
# Docker files Docker Hub's credentials under its v1 index URL.
_HUB_KEY = "https://index.docker.io/v1/"


class AuthConfigError(Exception):
    pass


def config_path(root: Path) -> Path:
    return root / CONFIG_NAME


def server_key(registry: str) -> str:
    return _HUB_KEY if registry == DEFAULT_REGISTRY else registry


def load(root: Path) -> dict[str, Any]:
    try:
        data: Any = json.loads(config_path(root).read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise AuthConfigError(f"{config_path(root)} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AuthConfigError(f"{config_path(root)} is not a JSON object")
    return data


def get_credentials(root: Path, registry: str) -> Credentials | None:
    wanted = _host_of(server_key(registry))
    for key, entry in load(root).get("auths", {}).items():
        if _host_of(key) != wanted or not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password"):
            from oci.client import Credentials

            return Credentials(str(entry["username"]), str(entry["password"]))
        if entry.get("auth"):
            return decode_auth(str(entry["auth"]))
    return None


def store_credentials(root: Path, registry: str, credentials: Credentials) -> None:
    data = load(root)
    auths = data.setdefault("auths", {})
    _drop(auths, registry)
    auths[server_key(registry)] = {"auth": encode_auth(credentials)}
    _write(root, data)


def remove_credentials(root: Path, registry: str) -> bool:
    data = load(root)
    removed = _drop(data.get("auths", {}), registry)
    if removed:
        _write(root, data)
    return removed


def insecure_registries(root: Path) -> set[str]:
    return {str(host) for host in load(root).get("insecure-registries", [])}


def encode_auth(credentials: Credentials) -> str:
    return base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()


def decode_auth(auth: str) -> Credentials:
    # The HTTP client is imported only when credentials are used: it is slow to import for every command.
    from oci.client import Credentials

    try:
        user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthConfigError("stored credentials are not valid base64 user:password") from None
    if not sep:
        raise AuthConfigError("stored credentials are not in user:password form")
    return Credentials(user, password)


def _host_of(key: str) -> str:
    """`https://host:port/v1/` and `host:port` name the same registry."""
    return key.split("://", 1)[-1].split("/", 1)[0]


def _drop(auths: dict[str, Any], registry: str) -> bool:
    wanted = _host_of(server_key(registry))
    stale = [key for key in auths if _host_of(key) == wanted]
    for key in stale:
        del auths[key]
    return bool(stale)


def _write(root: Path, data: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".config-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, config_path(root))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
