"""The `run`/`create` flags that shape what Docker records about a container: labels, exposed
and published ports (`-p` ranges and /udp, `-P`), and the Entrypoint/Cmd that `inspect` reports."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.ports import normalise_exposed, parse_publish, publish_all
from runtime.spec import PortMapping

__all__ = ["add_create_arguments", "docker_fields"]


def add_create_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--label-file", action="append", default=[])
    p.add_argument("--expose", action="append", default=[])
    p.add_argument("-P", "--publish-all", action="store_true")


def _labels(args: argparse.Namespace, config: Mapping[str, Any]) -> dict[str, str]:
    # Docker merges the image's labels under the container's own.
    labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
    lines: list[str] = []
    for path in args.label_file:
        lines += [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for item in [*lines, *args.label]:
        key, _, value = item.partition("=")
        if not key:
            raise ValueError(f"invalid label '{item}': empty name")
        labels[key] = value
    return labels


def docker_fields(args: argparse.Namespace, config: Mapping[str, Any]) -> dict[str, Any]:
    """The ContainerSpec fields these flags set, with Docker's wording for a bad value."""
    ports: list[PortMapping] = [m for value in args.publish for m in parse_publish(value)]
    exposed = list(dict.fromkeys([*(config.get("ExposedPorts") or {}), *map(normalise_exposed, args.expose)]))
    if args.publish_all:
        ports += publish_all(exposed, ports)
    exposed = list(dict.fromkeys([*exposed, *(f"{m.container_port}/{m.protocol}" for m in ports)]))
    if args.entrypoint is not None:
        entrypoint = [args.entrypoint] if args.entrypoint else None
        cmd = list(args.cmd) or None
    else:
        entrypoint = list(config.get("Entrypoint") or []) or None
        cmd = list(args.cmd) or list(config.get("Cmd") or []) or None
    return {
        "ports": tuple(ports),
        "labels": _labels(args, config),
        "exposed_ports": tuple(exposed),
        "entrypoint": None if entrypoint is None else tuple(entrypoint),
        "cmd": None if cmd is None else tuple(cmd),
    }
