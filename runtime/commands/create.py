"""`dockyard create`: a container written, not started (`start` runs it)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["cmd_create"]


def cmd_create(args: argparse.Namespace) -> int:
    """Docker's `create`: pull when missing, write the container, print its id; `start` runs it."""
    from runtime.commands.run import build_spec
    from runtime.containers import ContainerStore
    from runtime.ensure import ensure_image
    from runtime.images import ImageError, ImageStore, default_root
    from runtime.volumes import VolumeStore

    root = default_root()
    try:
        image = ensure_image(ImageStore(root), args.image, args.platform)
    except ImageError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 125
    store = ContainerStore(root)
    spec = build_spec(args, image, store, VolumeStore(root))
    container = store.create(spec)
    print(container.id)
    return 0
