"""A Compose project: files found, merged, interpolated, validated and normalised."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from runtime.compose.interpolate import interpolate, read_env_file
from runtime.compose.validate import ComposeError, validate

__all__ = ["DEFAULT_FILES", "Project", "container_name", "load_project", "project_name"]

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")


@dataclass(frozen=True)
class Project:
    name: str
    directory: Path
    config: dict[str, object]

    def services(self) -> dict[str, dict[str, object]]:
        services = self.config.get("services", {})
        assert isinstance(services, dict)
        return services


def project_name(raw: str) -> str:
    """docker-compose 1.29's normalisation: lower case, only [a-z0-9]."""
    return re.sub(r"[^a-z0-9]", "", raw.lower())


def container_name(project: str, service: str, index: int = 1) -> str:
    """PROJECT_SERVICE_N as docker-compose 1.29 names containers."""
    return f"{project}_{service}_{index}"


def _find_file(directory: Path) -> Path:
    for name in DEFAULT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise ComposeError(
        "Can't find a suitable configuration file in this directory or any parent. "
        "Supported filenames: " + ", ".join(DEFAULT_FILES)
    )


def _merge(base: dict[str, object], override: dict[str, object]) -> dict[str, object]:
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, object]:
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ComposeError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ComposeError(f"{path}: {exc.strerror}") from None
    if not isinstance(document, dict):
        raise ComposeError(f"Top level object in '{path}' needs to be an object not '{type(document).__name__}'.")
    if "services" not in document and "version" not in document:
        document = {"services": document}
    return document


def _normalise_service(service: dict[str, object]) -> dict[str, object]:
    env = service.get("environment")
    if isinstance(env, list):
        pairs: dict[str, object] = {}
        for item in env:
            key, sep, value = str(item).partition("=")
            pairs[key] = value if sep else None
        service["environment"] = pairs
    networks = service.get("networks")
    if isinstance(networks, list):
        service["networks"] = {str(name): None for name in networks}
    depends = service.get("depends_on")
    if isinstance(depends, list):
        service["depends_on"] = {str(name): {"condition": "service_started"} for name in depends}
    return service


def load_project(files: list[str], name: str | None, environ: dict[str, str] | None = None) -> Project:
    """The project from -f FILEs (or the default file), .env and the environment."""
    paths = [Path(f) for f in files] or [_find_file(Path.cwd())]
    directory = paths[0].resolve().parent
    env: dict[str, str] = {}
    if (directory / ".env").is_file():
        env.update(read_env_file(directory / ".env"))
    env.update(os.environ if environ is None else environ)
    document: dict[str, object] = {}
    for path in paths:
        document = _merge(document, _read(path))
    interpolated = interpolate(document, env)
    assert isinstance(interpolated, dict)
    validate(interpolated)
    for service in interpolated["services"].values():
        _normalise_service(service)
    raw = name or env.get("COMPOSE_PROJECT_NAME") or str(interpolated.get("name") or directory.name)
    interpolated.pop("version", None)
    return Project(project_name(raw), directory, interpolated)
