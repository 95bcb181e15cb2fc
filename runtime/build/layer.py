"""An overlay upper directory as an OCI layer (image-layer.md): a gzip'd tar with entries in sorted order,
numeric owners and no user or group names, hard links kept, mtimes clamped to SOURCE_DATE_EPOCH when it is
set, and a gzip header without name or time, so the same tree always gives the same digests.

Overlay's whiteouts (character devices 0:0) become `.wh.NAME` entries and an opaque directory (the
`trusted.overlay.opaque=y` xattr) gets a `.wh..wh..opq` entry, the conversions Docker's overlay2 driver
makes when it diffs a container. Only the `security.capability` xattr is carried, as Docker does."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from runtime.layers import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX, is_whiteout_device

__all__ = ["EMPTY_TAR_DIFF_ID", "TarredLayer", "is_empty", "write_layer"]

_CHUNK = 1 << 20
_CAPABILITY = "security.capability"
# The diff id of a tar with no entries: what Docker calls an empty layer (layer.DigestSHA256EmptyTar).
EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


@dataclass(frozen=True)
class TarredLayer:
    diff_id: str  # sha256 of the tar
    digest: str  # sha256 of the gzip'd tar
    size: int  # bytes of the gzip'd tar
    blob: Path  # the gzip'd tar


class _Hashing(io.RawIOBase):
    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.hasher = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.hasher.update(data)
        self.count += len(data)
        self.inner.write(data)
        return len(data)


def is_empty(layer_dir: Path) -> bool:
    return not any(os.scandir(layer_dir))


def write_layer(layer_dir: Path, blob: Path, epoch: int | None = None) -> TarredLayer:
    """Write the layer of the overlay-format directory `layer_dir` to `blob` (gzip)."""
    with open(blob, "wb") as raw:
        compressed = _Hashing(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
            plain = _Hashing(cast(IO[bytes], gz))
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _Writer(tar, epoch).tree(layer_dir)
    return TarredLayer(
        "sha256:" + plain.hasher.hexdigest(), "sha256:" + compressed.hasher.hexdigest(), compressed.count, blob
    )


class _Writer:
    def __init__(self, tar: tarfile.TarFile, epoch: int | None) -> None:
        self.tar = tar
        self.epoch = epoch
        self.inodes: dict[tuple[int, int], str] = {}

    def mtime(self, value: float) -> int:
        seconds = int(value)
        return min(seconds, self.epoch) if self.epoch is not None else seconds

    def tree(self, top: Path) -> None:
        for name in sorted(os.listdir(top)):
            self.entry(top / name, name)

    def entry(self, path: Path, name: str) -> None:
        st = os.lstat(path)
        if is_whiteout_device(st):
            parent, _, base = name.rpartition("/")
            info = tarfile.TarInfo(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base)
            info.mtime = self.mtime(st.st_mtime)
            self.tar.addfile(info)
            return
        if stat.S_ISSOCK(st.st_mode):
            return
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = self.mtime(st.st_mtime)
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1 and key in self.inodes:
            info.type = tarfile.LNKTYPE
            info.linkname = self.inodes[key]
            self.tar.addfile(info)
            return
        if stat.S_ISREG(st.st_mode):
            info.type = tarfile.REGTYPE
            info.size = st.st_size
            self._capability(path, info)
            if st.st_nlink > 1:
                self.inodes[key] = name
            with open(path, "rb") as handle:
                self.tar.addfile(info, handle)
            return
        if stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(path)
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return
        self.tar.addfile(info)
        if stat.S_ISDIR(st.st_mode):
            if _opaque(path):
                marker = tarfile.TarInfo(f"{name}/{OPAQUE_MARKER}")
                marker.mtime = info.mtime
                self.tar.addfile(marker)
            for child in sorted(os.listdir(path)):
                self.entry(path / child, f"{name}/{child}")

    @staticmethod
    def _capability(path: Path, info: tarfile.TarInfo) -> None:
        try:
            value = os.getxattr(path, _CAPABILITY, follow_symlinks=False)
        except OSError:
            return
        info.pax_headers = {f"SCHILY.xattr.{_CAPABILITY}": value.decode("utf-8", "surrogateescape")}


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
