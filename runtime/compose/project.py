"""A Compose project: files found, merged, interpolated, validated and normalised."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from runtime.compose.interpolate import interpolate, read_env_file
from runtime.compose.names import container_name
from runtime.compose.validate import ComposeError, check_references, validate
from runtime.compose.values import items, mapping

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

    def section(self, name: str) -> dict[str, dict[str, object]]:
        """The top-level `networks` or `volumes`, each entry an object ({} for a bare name)."""
        entries = self.config.get(name) or {}
        assert isinstance(entries, dict)
        return {key: value or {} for key, value in entries.items()}

    def order(self, only: list[str] | None = None) -> list[str]:
        """Services in start order (dependencies, through depends_on and links, first); with
        `only`, those and what they depend on."""
        services = self.services()
        done: list[str] = []

        def visit(name: str) -> None:
            if name in done:
                return
            service = services[name]
            deps = list(mapping(service, "depends_on"))
            deps += [str(link).split(":")[0] for link in items(service, "links")]
            for dep in deps:
                visit(dep)
            done.append(name)

        for name in only if only else sorted(services):
            if name not in services:
                raise ComposeError(f"No such service: {name}")
            visit(name)
        return done


def project_name(raw: str) -> str:
    """docker-compose 1.29's normalisation: lower case, only [a-z0-9]."""
    return re.sub(r"[^a-z0-9]", "", raw.lower())


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


def _read(path: Path) -> tuple[dict[str, object], bool]:
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ComposeError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ComposeError(f"{path}: {exc.strerror}") from None
    if not isinstance(document, dict):
        raise ComposeError(f"Top level object in '{path}' needs to be an object not '{type(document).__name__}'.")
    if "services" not in document and "version" not in document:
        return {"services": document}, True
    return document, False


def _pairs(value: object) -> dict[str, object]:
    """A list of KEY=VALUE or a mapping, as a mapping of strings (None for a bare KEY)."""
    if isinstance(value, list):
        pairs: dict[str, object] = {}
        for item in value:
            key, sep, text = str(item).partition("=")
            pairs[key] = text if sep else None
        return pairs
    assert isinstance(value, dict)
    return {str(k): v if v is None else _scalar(v) for k, v in value.items()}


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ports(item: object) -> list[object]:
    """A ports entry as docker-compose 1.29's `config` prints it: with a host address, the short
    form IP:PUBLISHED:TARGET/PROTOCOL; otherwise the long form, one entry per port of a range."""
    if isinstance(item, dict):
        return [{k: v for k, v in item.items() if v is not None}]
    text = str(item)
    protocol = ""
    if "/" in text:
        text, protocol = text.split("/", 1)
    parts = text.rsplit(":", 2)
    if len(parts) == 3:
        return [f"{text}/{protocol or 'tcp'}"]
    targets = _range(parts[-1])
    published = _range(parts[0]) if len(parts) == 2 and parts[0] else []
    entries: list[object] = []
    for index, target in enumerate(targets):
        entry: dict[str, object] = {"target": target}
        if published:
            entry["published"] = published[index] if len(published) == len(targets) else published[0]
        if protocol:
            entry["protocol"] = protocol
        entries.append(dict(sorted(entry.items())))
    return entries


def _range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _volume(item: object, directory: Path) -> str:
    """A volumes entry as SOURCE:TARGET:MODE, a bind's source made absolute (as 1.29)."""
    if isinstance(item, dict):
        mode = "ro" if item.get("read_only") else "rw"
        source = str(item.get("source") or "")
        text = f"{source}:{item['target']}:{mode}" if source else str(item["target"])
    else:
        text = str(item)
    parts = text.split(":")
    if len(parts) == 1:
        return text
    if len(parts) == 2:
        parts.append("rw")
    source = parts[0]
    if source.startswith(("/", ".", "~")):
        source = str((directory / Path(source).expanduser()).resolve())
    return ":".join([source, *parts[1:]])


def _normalise_service(service: dict[str, object], directory: Path) -> dict[str, object]:
    for key in ("environment", "labels"):
        if key in service:
            service[key] = _pairs(service[key])
    files = service.pop("env_file", None)
    if files is not None:
        # As docker-compose 1.29: the files' variables become `environment`, which wins over them.
        merged: dict[str, object] = {}
        for name in [files] if isinstance(files, str) else items({"env_file": files}, "env_file"):
            path = directory / str(name)
            if not path.is_file():
                raise ComposeError(f"Couldn't find env file: {path}")
            merged.update(read_env_file(path))
        merged.update(mapping(service, "environment"))
        service["environment"] = merged
    if "ports" in service:
        service["ports"] = [e for p in items(service, "ports") for e in _ports(p)]
    if "volumes" in service:
        service["volumes"] = [_volume(v, directory) for v in items(service, "volumes")]
    for key in ("dns", "dns_search", "tmpfs"):
        if isinstance(service.get(key), str):
            service[key] = [service[key]]
    build = service.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if isinstance(build, dict):
        context = (directory / str(build.get("context", "."))).resolve()
        if not context.is_dir():
            raise ComposeError(f"build path {context} either does not exist, is not accessible, or is not a valid URL.")
        build["context"] = str(context)
        service["build"] = build
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
    v1 = False
    for path in paths:
        part, v1 = _read(path)
        document = _merge(document, part)
    interpolated = interpolate(document, env)
    assert isinstance(interpolated, dict)
    shown = str(paths[0]) if files else f"./{paths[0].name}"
    validate(interpolated, shown, v1)
    for service in interpolated["services"].values():
        _normalise_service(service, directory)
    check_references(interpolated)
    raw = name or env.get("COMPOSE_PROJECT_NAME") or str(interpolated.get("name") or directory.name)
    interpolated.pop("version", None)
    return Project(project_name(raw), directory, interpolated)
