"""`dockyard push NAME[:TAG]` (and `--all-tags`), with the credentials `dockyard login` stored."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["cmd_push", "register"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("push", help="Upload an image to a registry")
    parser.add_argument("-a", "--all-tags", action="store_true", help="push every local tag of the repository")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP or unverified TLS")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress progress output")
    parser.add_argument("ref", metavar="NAME[:TAG]")
    parser.set_defaults(func=cmd_push)


def cmd_push(args: argparse.Namespace) -> int:
    from runtime.images import ImageStore, default_root
    from runtime.push import PushError, push_image

    store = ImageStore(default_root())
    try:
        asyncio.run(
            push_image(store, args.ref, all_tags=args.all_tags, insecure=args.insecure, progress=not args.quiet)
        )
    except PushError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    return 0
