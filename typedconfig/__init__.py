"""Typed, frozen option dataclasses built from plain YAML data, naming the key of the first error.

The packages that own options (`auth/`, each storage backend, the registry) declare dataclasses;
`build` turns a mapping into one of them. It knows no package: which keys exist is read from the
dataclasses' type hints. Durations (`Duration` fields) are parsed here, once, at load, so a bad
one stops the start with the key's name instead of failing later in a background task.
"""

from __future__ import annotations

import dataclasses
import logging
import types
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any, Literal, NewType, Union, get_args, get_origin, get_type_hints

log = logging.getLogger("dockyard.config")

# Seconds, read from Go-style text (`30s`, `5m`, `168h`, `1h30m`) as distribution writes them.
Duration = NewType("Duration", float)


_NONE: Mapping[str, str] = MappingProxyType({})


class ConfigError(ValueError):
    """A bad configuration: the message names the key."""


def parse_duration(text: str) -> float:
    """Go-style durations as distribution writes them: `30s`, `5m`, `168h`, `1h30m`."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = text[i : i + 2] if text[i : i + 2] in units else ch
        if unit not in units or not number or number.count(".") > 1:
            raise ValueError(f"invalid duration {text!r} (write it like 30s, 5m, 168h or 1h30m)")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        # A bare number is seconds; after a unit it is a typo (`1h30` meaning 1h30m?), as in Go.
        if number.count(".") > 1 or i > len(number):
            raise ValueError(f"invalid duration {text!r} (write it like 30s, 5m, 168h or 1h30m)")
        total += float(number)
    return total


def duration(text: str) -> Duration:
    """A default for a `Duration` field, written as the config file would write it."""
    return Duration(parse_duration(text))


def dataclass_of(tp: Any) -> Any:
    """The dataclass inside a type hint (`X` or `X | None`), or None."""
    if dataclasses.is_dataclass(tp):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        for arg in get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def build(cls: Any, data: Any, where: str, ignored: Collection[str] = (), refused: Mapping[str, str] = _NONE) -> Any:
    """Turn plain YAML data into the dataclass `cls`, naming the key of the first error.

    Keys in `ignored` (dotted, from the top) are known not to be implemented and harmless to
    skip: they are logged as warnings. Keys in `refused` cannot be skipped without giving the
    operator less than they asked for (another storage driver, another auth mode): they are errors
    carrying the reason given.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in hints:
            if dotted in refused:
                raise ConfigError(f"{dotted}: {refused[dotted]}")
            if dotted in ignored:
                log.warning("config key %s is a distribution key that Dockyard does not implement; ignored", dotted)
                continue
            raise ConfigError(f"unknown config key {dotted}")
        kwargs[key] = _convert(hints[key], value, dotted, ignored, refused)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str, ignored: Collection[str], refused: Mapping[str, str]) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or value == "":
            inner = dataclass_of(tp)
            return build(inner, {}, where, ignored, refused) if inner is not None else None
        return _convert(args[0], value, where, ignored, refused)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where, ignored, refused)
    if tp is Duration:
        return _duration(value, where)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            value = [value]
        (item,) = get_args(tp)
        return [_convert(item, v, f"{where}[{i}]", ignored, refused) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string")
        return str(value)
    return value


def _duration(value: Any, where: str) -> Duration:
    if value is None or value == "":
        return Duration(0.0)  # empty: off, where the key has an off
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{where}: expected a duration like 30s, 5m or 168h, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if seconds < 0:
        raise ConfigError(f"{where}: a duration cannot be negative")
    return Duration(seconds)


__all__ = ["ConfigError", "Duration", "build", "dataclass_of", "duration", "parse_duration"]
