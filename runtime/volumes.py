"""Named volumes, kept like Docker's local driver: `<root>/volumes/<name>/_data`, independent of
any container, removed only by `volume rm`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

__all__ = ["VOLUME_NAME", "VolumeError", "VolumeStore"]

VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class VolumeError(Exception):
    pass


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.base = Path(root) / "volumes"

    def data_dir(self, name: str) -> Path:
        if not VOLUME_NAME.match(name):
            raise VolumeError(f'invalid volume name "{name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
        return self.base / name / "_data"

    def create(self, name: str) -> Path:
        path = self.data_dir(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

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
