"""`dockyard volume create|ls|rm|prune|inspect`: named volumes, as `docker volume`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from runtime.containers import ContainerStore
from runtime.volumes import VolumeError, VolumeStore

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def _root() -> Path:
    from runtime.images import default_root

    return default_root()


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], wrap: Callable[[Handler], Handler]
) -> None:
    volume = subparsers.add_parser("volume", help="Manage volumes")
    sub = volume.add_subparsers(dest="volume_command", metavar="COMMAND", required=True)
    create = sub.add_parser("create", help="Create a volume")
    create.add_argument("name")
    create.set_defaults(func=wrap(cmd_create))
    ls = sub.add_parser("ls", help="List volumes")
    ls.add_argument("-q", "--quiet", action="store_true")
    ls.set_defaults(func=wrap(cmd_ls))
    rm = sub.add_parser("rm", help="Remove one or more volumes")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("names", nargs="+")
    rm.set_defaults(func=wrap(cmd_rm))
    prune = sub.add_parser("prune", help="Remove unused local volumes")
    prune.add_argument("-a", "--all", action="store_true", help="remove named volumes too, not only anonymous ones")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    prune.set_defaults(func=wrap(cmd_prune))
    inspect = sub.add_parser("inspect", help="Display detailed information on one or more volumes")
    inspect.add_argument("names", nargs="+")
    inspect.set_defaults(func=wrap(cmd_inspect))


def cmd_create(args: argparse.Namespace) -> int:
    try:
        VolumeStore(_root()).create(args.name)
    except VolumeError as exc:
        print(f"Error response from daemon: {exc}", file=sys.stderr)
        return 1
    print(args.name)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    names = VolumeStore(_root()).list()
    if args.quiet:
        print("\n".join(names)) if names else None
        return 0
    print("DRIVER    VOLUME NAME")
    for name in names:
        print(f"local     {name}")
    return 0


def _in_use(root: Path) -> set[str]:
    return {m.volume for c in ContainerStore(root).list() for m in c.spec.mounts if m.kind == "volume"}


def cmd_prune(args: argparse.Namespace) -> int:
    from runtime.commands.confirm import confirm, reclaimed

    which = "all" if args.all else "anonymous"
    warning = f"WARNING! This will remove {which} local volumes not used by at least one container."
    if not args.force and not confirm(warning):
        return 0
    root = _root()
    removed, size = VolumeStore(root).prune(_in_use(root), include_named=args.all)
    if removed:
        print("Deleted Volumes:\n" + "".join(f"{name}\n" for name in removed))
    print(reclaimed(size))
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    root = _root()
    in_use = _in_use(root)
    code = 0
    for name in args.names:
        try:
            VolumeStore(root).remove(name, in_use)
            print(name)
        except VolumeError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            code = 1
    return code


def cmd_inspect(args: argparse.Namespace) -> int:
    store = VolumeStore(_root())
    result = []
    code = 0
    for name in args.names:
        if not store.exists(name):
            print(f"Error: No such volume: {name}", file=sys.stderr)
            code = 1
            continue
        result.append({"Driver": "local", "Name": name, "Mountpoint": str(store.data_dir(name)), "Scope": "local"})
    print(json.dumps(result, indent=4))
    return code
