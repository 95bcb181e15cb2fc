"""A Compose file checked against the typed model (model.py), then for references between its
parts; the messages are docker-compose 1.29's (the one Debian ships), naming the key."""

from __future__ import annotations

import re

from runtime.compose import model
from runtime.compose.model import Any_, Array, Enum, Mapping, Record, Scalar, Type, Union
from runtime.compose.values import items

__all__ = ["ComposeError", "check_references", "validate"]


class ComposeError(Exception):
    """An invalid Compose file or project; the message is the whole of what is printed."""


class _Invalid(Exception):
    pass


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _type_kind(t: Type) -> str:
    if isinstance(t, Scalar):
        return "number" if t.kind == "integer" else t.kind
    if isinstance(t, Enum):
        return "string"
    if isinstance(t, Array):
        return "array"
    return "object"


_ARTICLE = {"string": "a string", "number": "a number", "boolean": "a boolean", "array": "an array"}


def _describe(t: Type) -> list[str]:
    if isinstance(t, Union):
        # An option the value had the right kind for but the wrong form is not offered (as 1.29).
        return [
            d for option in t.options if not (isinstance(option, Scalar) and option.pattern) for d in _describe(option)
        ]
    if isinstance(t, Scalar) and t.kind == "null":
        return ["null"]
    return [_ARTICLE.get(_type_kind(t), "an object")]


def _invalid_type(path: str, t: Type) -> _Invalid:
    return _Invalid(f"{path} contains an invalid type, it should be {', or '.join(_describe(t))}")


def _check(value: object, t: Type, path: str) -> None:
    if isinstance(t, Any_):
        return
    if isinstance(t, Union):
        for option in t.options:
            if _type_kind(option) == _kind(value) or (_kind(value) == "null" and _nullable(option)):
                if isinstance(option, Scalar) and option.pattern and not re.match(option.pattern, str(value)):
                    continue
                _check(value, option, path)
                return
        raise _invalid_type(path, t)
    if isinstance(t, Record) and value is None and t.nullable:
        return
    if isinstance(t, Scalar) and t.kind == "null":
        if value is not None:
            raise _invalid_type(path, t)
        return
    if _type_kind(t) != _kind(value):
        raise _invalid_type(path, t)
    if isinstance(t, Scalar) and t.pattern and not re.match(t.pattern, str(value)):
        raise _Invalid(f"{path} {value!r} is not a valid {path.rsplit('.', 1)[-1]}")
    if isinstance(t, Enum) and value not in t.values:
        options = ", ".join(t.values[:-1]) + ", or a " + t.values[-1] if len(t.values) > 1 else t.values[0]
        raise _Invalid(f'{path} contains "{value}", which is an invalid type, it should be a {options}')
    if isinstance(t, Array) and t.items is not None:
        assert isinstance(value, list)
        for item in value:
            _check(item, t.items, path)
    if isinstance(t, Mapping) and t.values is not None:
        assert isinstance(value, dict)
        for key, item in value.items():
            _check(item, t.values, f"{path}.{key}")
    if isinstance(t, Record):
        assert isinstance(value, dict)
        for key, item in value.items():
            if str(key).startswith("x-"):
                continue
            if key not in t.fields:
                raise _Invalid(f"{path} value '{key}' does not match any of the regexes: '^x-'")
            _check(item, t.fields[key], f"{path}.{key}")


def _nullable(t: Type) -> bool:
    return isinstance(t, Record) and t.nullable


def validate(document: dict[str, object], filename: str = "./docker-compose.yml", v1: bool = False) -> None:
    """Raise ComposeError for the first key with an unknown name or a wrong type."""
    try:
        _validate(document, filename, v1)
    except _Invalid as exc:
        raise ComposeError(f"The Compose file '{filename}' is invalid because:\n{exc}") from None


def _validate(document: dict[str, object], filename: str, v1: bool) -> None:
    for key in document:
        if key not in model.TOP.fields and not str(key).startswith("x-"):
            raise _Invalid(f"'{key}' does not match any of the regexes: '^x-'")
    services = document.get("services")
    if not isinstance(services, dict):
        raise ComposeError(f"In file '{filename}', services must be a mapping not {_a(_kind(services))}.")
    for name, service in services.items():
        path = str(name) if v1 else f"services.{name}"
        if not isinstance(service, dict):
            raise ComposeError(f"In file '{filename}', services '{name}' must be a mapping not {_a(_kind(service))}.")
        for key, value in service.items():
            if str(key).startswith("x-"):
                continue
            if key not in model.SERVICE.fields:
                raise _Invalid(f"Unsupported config option for {path}: '{key}'")
            _check(value, model.SERVICE.fields[key], f"{path}.{key}")
    for key, value in document.items():
        if key != "services" and not str(key).startswith("x-"):
            _check(value, model.TOP.fields[key], str(key))
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            raise ComposeError(
                "The Compose file is invalid because:\n"
                f"Service {name} has neither an image nor a build context specified. At least one must be provided."
            )


def _a(kind: str) -> str:
    return {"array": "an array", "object": "an object", "null": "null"}.get(kind, f"a {kind}")


def check_references(config: dict[str, object]) -> None:
    """After normalisation: every service, network and named volume a service names exists, and
    depends_on has no cycle."""
    services = config["services"]
    networks = config.get("networks") or {}
    volumes = config.get("volumes") or {}
    assert isinstance(services, dict) and isinstance(networks, dict) and isinstance(volumes, dict)
    for name, service in services.items():
        for dep in service.get("depends_on") or {}:
            if dep not in services:
                raise ComposeError(f"Service '{name}' depends on service '{dep}' which is undefined.")
        for link in service.get("links") or []:
            target = str(link).split(":")[0]
            if target not in services:
                raise ComposeError(f"Service '{name}' has a link to service '{target}' which is undefined.")
        for net in service.get("networks") or {}:
            if net != "default" and net not in networks:
                raise ComposeError(f'Service "{name}" uses an undefined network "{net}"')
        for mount in service.get("volumes") or []:
            if isinstance(mount, str):
                source = mount.split(":")[0]
                if ":" in mount and not source.startswith(("/", ".", "~")) and source not in volumes:
                    raise ComposeError(
                        f'Named volume "{mount}" is used in service "{name}" but no declaration was found in the '
                        "volumes section."
                    )
    _check_cycles(services)


def _check_cycles(services: dict[str, dict[str, object]]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name) :]
            raise ComposeError(f"Circular dependency between {' and '.join(sorted(cycle))}")
        state[name] = 1
        deps = services[name].get("depends_on") or {}
        assert isinstance(deps, dict)
        links = [str(link).split(":")[0] for link in items(services[name], "links")]
        for dep in [*deps, *links]:
            if dep in services:
                visit(dep, [*trail, name])
        state[name] = 2

    for name in services:
        visit(name, [])
