"""`volume ls` with Docker's `-f/--filter` (dangling=, name=, driver=) and `--format`, so that
`docker volume rm $(docker volume ls -q -f dangling=true)` works word for word."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from runtime.containers import ContainerStore
from runtime.volumes import VolumeStore

__all__ = ["add_list_arguments", "cmd_volume_ls"]

DEFAULT_FORMAT = "table {{.Driver}}\t{{.Name}}"
HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
           "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE"}  # fmt: skip
FILTERS = ("dangling", "name", "driver", "label")


def add_list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")


def cmd_volume_ls(args: argparse.Namespace) -> int:
    from runtime.images import default_root
    from runtime.listformat import TemplateError, render_rows

    root = default_root()
    volumes = VolumeStore(root)
    in_use = {m.volume for c in ContainerStore(root).list() for m in c.spec.mounts if m.kind == "volume"}
    filters: dict[str, list[str]] = {}
    for value in args.filter:
        key, sep, val = value.partition("=")
        if not sep or key not in FILTERS:
            print(f"Error response from daemon: Invalid filter '{key}'", file=sys.stderr)
            return 1
        filters.setdefault(key, []).append(val)
    checks: dict[str, Callable[[str, str], bool]] = {
        "dangling": lambda name, v: (name not in in_use) == (v.lower() in ("true", "1")),
        "name": lambda name, v: v in name,
        "driver": lambda _name, v: v == "local",
        "label": lambda _name, _v: False,  # volumes carry no labels here
    }
    names = [n for n in volumes.list() if all(any(checks[k](n, v) for v in vs) for k, vs in filters.items())]
    rows = [{"Driver": "local", "Name": n, "Scope": "local", "Mountpoint": str(volumes.data_dir(n)), "Labels": "",
             "Links": "N/A", "Size": "N/A"} for n in names]  # fmt: skip
    fmt = "{{.Name}}" if args.quiet else args.format or DEFAULT_FORMAT
    try:
        sys.stdout.write(render_rows(fmt, rows, HEADERS))
    except TemplateError as exc:
        print(f"template parsing error: {exc}", file=sys.stderr)
        return 1
    return 0
