"""`dockyard build` (Docker's flags) and `dockyard builder prune`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["cmd_build", "cmd_builder_prune", "register"]


def register(subparsers: Subparsers) -> None:
    build = subparsers.add_parser("build", help="Build an image from a Dockerfile")
    add_build_arguments(build)
    build.set_defaults(func=cmd_build)
    builder = subparsers.add_parser("builder", help="Manage the build cache")
    verbs = builder.add_subparsers(dest="builder_command", metavar="COMMAND", required=True)
    verbs.add_parser("build", parents=[build], add_help=False, help="Build an image from a Dockerfile")
    prune = verbs.add_parser("prune", help="Remove the build cache")
    prune.add_argument("-a", "--all", action="store_true", help="accepted for Docker compatibility")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    prune.set_defaults(func=cmd_builder_prune)


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--tag", action="append", default=[], help="name:tag for the image (repeatable)")
    p.add_argument("-f", "--file", default=None, help="the Dockerfile (default: CONTEXT/Dockerfile; - for stdin)")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--target", default=None, help="the stage to build")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--pull", action="store_true", help="always pull the base images")
    p.add_argument("--platform", default=None)
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.add_argument("--network", choices=("default", "host", "none"), default="default")
    p.add_argument("context", metavar="PATH|-", help="the build context directory, or - for a Dockerfile on stdin")


def _pairs(values: list[str], what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise ValueError(f"invalid {what} {item!r}: expected KEY=VALUE")
        if not sep:
            # Docker: `--build-arg NAME` takes the value from the environment, or is left out.
            if key not in os.environ:
                continue
            value = os.environ[key]
        result[key] = value
    return result


def cmd_build(args: argparse.Namespace) -> int:
    from runtime.build.builder import Builder, BuildError, BuildOptions
    from runtime.images import ImageError, ImageStore, default_root

    if sys.platform != "linux" or os.geteuid() != 0:
        print("dockyard build needs root on Linux: RUN steps are containers", file=sys.stderr)
        return 1
    try:
        build_args = _pairs(args.build_arg, "--build-arg")
        labels = _pairs(args.label, "--label")
        context, dockerfile_path, text = _inputs(args)
    except (ValueError, OSError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    options = BuildOptions(
        dockerfile=text,
        context=context,
        dockerfile_path=dockerfile_path,
        tags=tuple(args.tag),
        build_args=build_args,
        target=args.target,
        no_cache=args.no_cache,
        pull=args.pull,
        platform=args.platform,
        labels=labels,
        quiet=args.quiet,
        network="none" if args.network == "none" else "host",
    )
    try:
        result = Builder(ImageStore(default_root()), options).build()
    except (BuildError, ImageError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    if args.quiet:
        print(result.image_id)
        return 0
    print(f"Successfully built {result.image_id.partition(':')[2][:12]}")
    for tag in result.tags:
        print(f"Successfully tagged {tag}")
    return 0


def _inputs(args: argparse.Namespace) -> tuple[Path | None, Path | None, str]:
    """The context directory (None for `-`), the Dockerfile's path and its text."""
    if args.context == "-":
        if args.file not in (None, "-"):
            raise ValueError("a Dockerfile on stdin (-) has no context; -f cannot name another")
        return None, None, sys.stdin.read()
    context = Path(args.context).resolve()
    if not context.is_dir():
        raise ValueError(f"unable to prepare context: path {args.context!r} not found")
    if args.file == "-":
        return context, None, sys.stdin.read()
    path = Path(args.file) if args.file else context / "Dockerfile"
    if not path.is_absolute() and args.file:
        path = Path.cwd() / path
    if not path.is_file():
        raise ValueError(f"failed to read Dockerfile: open {path}: no such file or directory")
    return context, path, path.read_text()


def cmd_builder_prune(args: argparse.Namespace) -> int:
    from runtime.commands.confirm import confirm, reclaimed
    from runtime.images import ImageStore, default_root

    if not args.force and not confirm("WARNING! This will remove all dangling build cache."):
        return 0
    store = ImageStore(default_root())
    records = store.prune_build_cache()
    result = store.prune()
    print(f"Deleted build cache records: {records}")
    print(reclaimed(result.reclaimed))
    return 0
