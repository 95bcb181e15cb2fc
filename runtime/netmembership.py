"""Whether a container is on any user network, read without loading the network machinery, so a
container on the default network (loopback only) pays nothing for networks at start and exit.

A network record names each member by its container id (runtime/networks/store.py); a record
that merely mentions the id elsewhere only sends the caller down the full, exact path."""

from __future__ import annotations

import os
from pathlib import Path


def may_be_on_a_network(root: Path, container_id: str) -> bool:
    base = root / "networks"
    try:
        names = [name for name in os.listdir(base) if name.endswith(".json")]
    except OSError:
        return False
    wanted = container_id.encode()
    for name in names:
        try:
            if wanted in (base / name).read_bytes():
                return True
        except OSError:
            continue
    return False
