"""The image a command about to start a container needs: the local one, or pulled first when missing."""

from __future__ import annotations

import sys

from runtime.images import ImageStore, LocalImage


def ensure_image(store: ImageStore, ref: str, platform: str | None = None) -> LocalImage:
    """The local image for `ref`, pulled first (progress on stderr, as `docker run` does) when missing."""
    image = store.resolve(ref)
    if image is not None:
        return image
    # Imported only when a pull is needed: the event loop and the registry client cost a third of a second.
    import asyncio

    from runtime.pull import pull_image

    print(f"Unable to find image '{ref}' locally", file=sys.stderr)
    return asyncio.run(pull_image(store, ref, platform=platform, out=sys.stderr))
