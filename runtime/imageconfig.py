"""Docker's rules for combining an image's config with `run`'s flags: command, environment,
working directory and user."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DEFAULT_PATH", "ConfigError", "command", "environment", "parse_env_file"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ConfigError(Exception):
    pass


def command(config: Mapping[str, Any], args: Sequence[str], entrypoint: str | None) -> list[str]:
    """ENTRYPOINT + CMD. Arguments after the image replace CMD; --entrypoint replaces ENTRYPOINT
    and drops the image's CMD ("" clears it). Shell form is already ["/bin/sh", "-c", ...] in the
    config, written so by the builder."""
    image_entrypoint = list(config.get("Entrypoint") or [])
    image_cmd = list(config.get("Cmd") or [])
    if entrypoint is not None:
        image_entrypoint = [entrypoint] if entrypoint else []
        image_cmd = []
    cmd = list(args) if args else image_cmd
    argv = image_entrypoint + cmd
    if not argv:
        raise ConfigError("no command specified")
    return argv


def parse_env_file(text: str) -> list[str]:
    """Docker's --env-file: KEY=VALUE per line, # comments, a bare KEY takes the caller's value."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def environment(
    config: Mapping[str, Any],
    overrides: Sequence[str],
    hostname: str,
    home: str,
    terminal: bool,
    host_env: Mapping[str, str] | None = None,
) -> list[str]:
    """PATH and HOSTNAME first, TERM on a terminal, then the image's Env and the -e values
    (replacing in place), then HOME when nobody set it: the order Docker produces."""
    host_env = os.environ if host_env is None else host_env
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    if terminal:
        env["TERM"] = "xterm"
    for item in list(config.get("Env") or []):
        key, _, value = item.partition("=")
        env[key] = value
    for item in overrides:
        key, sep, value = item.partition("=")
        if not key:
            raise ConfigError(f"invalid environment variable: {item}")
        if sep:
            env[key] = value
        elif key in host_env:
            env[key] = host_env[key]
        else:
            env.pop(key, None)
    env.setdefault("HOME", home)
    return [f"{k}={v}" for k, v in env.items()]
