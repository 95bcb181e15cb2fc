"""`save`, `load` and `tag`: images in and out of `docker save` archives, and new names."""

from __future__ import annotations

import argparse
import os
import sys

from runtime.images import ImageStore, default_root

__all__ = ["cmd_load", "cmd_save", "cmd_tag"]


def _fail(message: str) -> int:
    print(f"Error response from daemon: {message}", file=sys.stderr)
    return 1


def _require_root(command: str) -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return f"dockyard {command} needs root on Linux: image layers keep their owners"
    return None


def cmd_save(args: argparse.Namespace) -> int:
    from runtime.imagearchive import ArchiveError, save_archive

    store = ImageStore(default_root())
    try:
        if args.output:
            tmp = f"{args.output}.part"
            with open(tmp, "wb") as out:
                save_archive(store, args.images, out)
            os.replace(tmp, args.output)
        else:
            if os.isatty(sys.stdout.fileno()):
                return _fail("cowardly refusing to save to a terminal. Use the -o flag or redirect")
            save_archive(store, args.images, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    except ArchiveError as exc:
        return _fail(str(exc))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from runtime.imagearchive import ArchiveError, load_archive

    problem = _require_root("load")
    if problem:
        print(problem, file=sys.stderr)
        return 1
    store = ImageStore(default_root())
    try:
        if args.input:
            with open(args.input, "rb") as source:
                loaded = load_archive(store, source)
        else:
            if os.isatty(sys.stdin.fileno()):
                return _fail("requested load from stdin, but stdin is empty")
            loaded = load_archive(store, sys.stdin.buffer)
    except (ArchiveError, OSError) as exc:
        return _fail(str(exc))
    if not args.quiet:
        for image in loaded:
            for tag in image.tags:
                print(f"Loaded image: {tag}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from oci.reference import InvalidReference, Reference
    from runtime.images import ImageError

    store = ImageStore(default_root())
    try:
        image = store.resolve(args.source)
        if image is None:
            return _fail(f"No such image: {args.source}")
        target = Reference.parse(args.target)
    except (ImageError, InvalidReference) as exc:
        print(f"Error parsing reference: {exc}", file=sys.stderr)
        return 1
    if target.digest:
        print(f'Error parsing reference: "{args.target}" is not a valid repository/tag', file=sys.stderr)
        return 1
    store.tag(str(target), image.manifest_digest)
    return 0
