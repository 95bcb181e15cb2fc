"""`dockyard create`: a container written, not started (`start` runs it)."""

from __future__ import annotations

import argparse
import sys

from runtime.containers import Container, ContainerStore

__all__ = ["cmd_create", "create_container"]


def create_container(args: argparse.Namespace) -> tuple[ContainerStore, Container] | None:
    """What `create` and `run` share: pull when missing, build the spec, write the container.
    None when the image cannot be had (the error is printed; Docker exits 125)."""
    from runtime.commands.run import build_spec
    from runtime.ensure import ensure_image
    from runtime.images import ImageError, ImageStore, default_root
    from runtime.volumes import VolumeStore

    root = default_root()
    try:
        image = ensure_image(ImageStore(root), args.image, args.platform)
    except ImageError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return None
    store = ContainerStore(root)
    spec = build_spec(args, image, store, VolumeStore(root))
    container = store.create(spec)
    if spec.network_name:
        from runtime.networks import NetworkError, connect

        try:
            connect(container, spec.network_name, aliases=args.network_alias, ip=args.ip, root=root)
        except NetworkError as exc:
            store.remove_files(container)
            print(f"dockyard: Error response from daemon: {exc}", file=sys.stderr)
            return None
    return store, container


def cmd_create(args: argparse.Namespace) -> int:
    """Docker's `create`: pull when missing, write the container, print its id; `start` runs it."""
    created = create_container(args)
    if created is None:
        return 125
    print(created[1].id)
    return 0
