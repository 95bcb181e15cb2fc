"""Named volumes, kept like Docker's local driver: `<root>/volumes/<name>/_data`, independent of
any container, removed only by `volume rm` or `volume prune`. An anonymous volume (`-v /path`, or
`--mount type=volume` without a source) has a random 64-hex name and an `anonymous` marker file
beside `_data`, so `run --rm`, `rm -v` and `volume prune` can tell it from a named one."""

from __future__ import annotations

import builtins
import os
import re
import shutil
from pathlib import Path

__all__ = ["VOLUME_NAME", "VolumeError", "VolumeStore", "directory_size"]

VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class VolumeError(Exception):
    pass


def check_name(name: str) -> None:
    """Docker's local driver's rules and wording (moby volume/local)."""
    if len(name) == 1:
        raise VolumeError(
            f"create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )
    if not VOLUME_NAME.match(name):
        raise VolumeError(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'
        )


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.base = Path(root) / "volumes"

    def data_dir(self, name: str) -> Path:
        check_name(name)
        return self.base / name / "_data"

    def create(self, name: str) -> Path:
        path = self.data_dir(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def create_anonymous(self) -> tuple[str, Path]:
        name = os.urandom(32).hex()  # as secrets.token_hex(32), without loading hmac
        path = self.create(name)
        (path.parent / "anonymous").touch()
        return name, path

    def is_anonymous(self, name: str) -> bool:
        return (self.base / name / "anonymous").is_file()

    def exists(self, name: str) -> bool:
        return self.data_dir(name).is_dir()

    def list(self) -> list[str]:
        if not self.base.is_dir():
            return []
        return sorted(p.name for p in self.base.iterdir() if (p / "_data").is_dir())

    def remove(self, name: str, in_use: set[str]) -> None:
        if not self.exists(name):
            raise VolumeError(f"get {name}: no such volume")
        if name in in_use:
            raise VolumeError(f"remove {name}: volume is in use")
        shutil.rmtree(self.base / name)

    def prune(self, in_use: set[str], include_named: bool) -> tuple[builtins.list[str], int]:
        """Remove the unused volumes (only anonymous ones unless `include_named`, as Docker since
        API 1.42); returns their names and the bytes reclaimed."""
        removed: builtins.list[str] = []
        reclaimed = 0
        for name in self.list():
            if name in in_use or not (include_named or self.is_anonymous(name)):
                continue
            reclaimed += directory_size(self.base / name / "_data")
            shutil.rmtree(self.base / name)
            removed.append(name)
        return removed, reclaimed


def directory_size(path: Path) -> int:
    """Bytes of the regular files under `path` (hard links counted once), as `du` would add them."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
