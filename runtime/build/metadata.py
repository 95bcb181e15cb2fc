"""The instructions that only change the image config (no layer): ENV, LABEL, USER, EXPOSE, VOLUME,
STOPSIGNAL, SHELL, CMD, ENTRYPOINT, HEALTHCHECK, ONBUILD, MAINTAINER, and WORKDIR's path. Each takes the
instruction with its variables already substituted and updates `config` (the image config's `config`)
in place, with Docker's rules (ENTRYPOINT drops a CMD the stage did not set itself, an ENV replaces the
variable where it stands, EXPOSE ranges are expanded, HEALTHCHECK durations are nanoseconds)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["MetadataError", "env_dict", "parse_duration", "set_env", "shell_or_exec", "workdir_path"]

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_PORT_RE = re.compile(r"^(\d+)(?:-(\d+))?(?:/([a-zA-Z]+))?$")


class MetadataError(ValueError):
    pass


def env_dict(config: dict[str, Any]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        result[key] = value
    return result


def set_env(config: dict[str, Any], key: str, value: str) -> None:
    env = list(config.get("Env") or [])
    for i, item in enumerate(env):
        if str(item).partition("=")[0] == key:
            env[i] = f"{key}={value}"
            break
    else:
        env.append(f"{key}={value}")
    config["Env"] = env


def shell_or_exec(args: Sequence[str], as_json: bool, shell: Sequence[str]) -> list[str]:
    """A command in exec form, or in shell form run by the stage's SHELL."""
    if as_json:
        return list(args)
    return [*shell, " ".join(args)]


def workdir_path(current: str, path: str) -> str:
    if not path:
        raise MetadataError("WORKDIR requires exactly one argument")
    joined = path if path.startswith("/") else posixpath.join(current or "/", path)
    return posixpath.normpath(joined)


def parse_duration(text: str, flag: str) -> int:
    """A Go duration ("30s", "1m30s", "500ms") in nanoseconds."""
    if text in ("0", ""):
        return 0
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise MetadataError(f"invalid duration {text!r} for --{flag}")
    return int(total)


def expose(config: dict[str, Any], ports: Sequence[str]) -> None:
    exposed = dict(config.get("ExposedPorts") or {})
    for port in ports:
        match = _PORT_RE.match(port)
        if match is None:
            raise MetadataError(f"invalid containerPort: {port}")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        proto = (match.group(3) or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp") or last < first:
            raise MetadataError(f"invalid port specification: {port}")
        for number in range(first, last + 1):
            exposed[f"{number}/{proto}"] = {}
    config["ExposedPorts"] = exposed


def volume(config: dict[str, Any], paths: Sequence[str]) -> None:
    volumes = dict(config.get("Volumes") or {})
    for path in paths:
        if not path.strip():
            raise MetadataError("VOLUME specified can not be an empty string")
        volumes[path] = {}
    config["Volumes"] = volumes


def labels(config: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> None:
    merged = dict(config.get("Labels") or {})
    merged.update(pairs)
    config["Labels"] = merged


def healthcheck(config: dict[str, Any], args: Sequence[str], as_json: bool, flags: dict[str, str]) -> None:
    if args[0] == "NONE":
        config["Healthcheck"] = {"Test": ["NONE"]}
        return
    command = list(args[1:])
    test = ["CMD", *command] if as_json else ["CMD-SHELL", " ".join(command)]
    check: dict[str, Any] = {"Test": test}
    for flag, field in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ):
        if flag in flags:
            value = parse_duration(flags[flag], flag)
            if value:
                check[field] = value
    if "retries" in flags:
        try:
            retries = int(flags["retries"])
        except ValueError:
            raise MetadataError(f"invalid --retries value {flags['retries']!r}") from None
        if retries < 0:
            raise MetadataError("--retries cannot be negative")
        if retries:
            check["Retries"] = retries
    config["Healthcheck"] = check
