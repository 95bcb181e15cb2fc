"""Layer archives (image-layer.md) into directories.

`unpack()` extracts one tar, tar+gzip or tar+zstd layer. Into an empty directory with `whiteouts="overlay"`
it produces an overlayfs lower directory: a whiteout `.wh.NAME` becomes a character device 0:0 called NAME
and an opaque marker `.wh..wh..opq` becomes the `trusted.overlay.opaque=y` xattr on its directory
(Documentation/filesystems/overlayfs.rst, "whiteouts and opaque directories"). With `whiteouts="delete"` it
applies the layer on top of a tree, deleting what the whiteouts name, as a copy-based snapshotter does.
`flatten()` merges overlay-format layer directories into one private tree, for when overlayfs is unavailable.

Entries are created relative to directory descriptors opened with O_NOFOLLOW, so no entry can reach outside
the destination: absolute names, `..` components, paths through a symlink and hard links that point outside
are refused. Device nodes are skipped and counted (a container's /dev is a fresh tmpfs, and the device
rules would refuse them anyway); FIFOs are kept.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Literal, cast

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX_PREFIX = "SCHILY.xattr."
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Whiteouts = Literal["overlay", "delete"]
Parts = tuple[str, ...]


class LayerError(Exception):
    pass


@dataclass(frozen=True)
class UnpackResult:
    diff_id: str  # sha256 of the uncompressed tar stream
    size: int  # bytes of regular file content written
    skipped_devices: int = 0  # character and block devices left out


# --- pure parts ------------------------------------------------------------------------------------------------


def clean_path(name: str) -> Parts:
    """The components of a tar entry name below the root; `()` is the root itself."""
    if name.startswith("/"):
        raise LayerError(f"refusing absolute path in layer: {name!r}")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise LayerError(f"refusing path that escapes the root: {name!r}")
    if any("\x00" in p for p in parts):
        raise LayerError(f"refusing path with a NUL byte: {name!r}")
    return parts


def whiteout_target(parts: Parts) -> tuple[Literal["whiteout", "opaque"], Parts] | None:
    """What a whiteout entry hides: ("whiteout", path) for `.wh.NAME`, ("opaque", dir) for the opaque marker,
    None for an ordinary entry."""
    if not parts or not parts[-1].startswith(WHITEOUT_PREFIX):
        return None
    if parts[-1] == OPAQUE_MARKER:
        return "opaque", parts[:-1]
    target = parts[-1][len(WHITEOUT_PREFIX) :]
    if target in ("", ".", "..") or target.startswith(WHITEOUT_PREFIX):
        raise LayerError(f"invalid whiteout {'/'.join(parts)!r}")
    return "whiteout", (*parts[:-1], target)


def is_whiteout_device(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


# --- streams ---------------------------------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.hasher = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.hasher.update(data)
        return n

    def drain(self) -> None:
        while self._inner.read(_CHUNK):
            pass


def _decompressed(source: BinaryIO) -> IO[bytes]:
    """The tar stream inside `source` (a seekable file), whatever compression its magic bytes announce."""
    start = source.tell()
    magic = source.read(4)
    source.seek(start)
    if magic.startswith(_GZIP_MAGIC):
        return cast(IO[bytes], gzip.GzipFile(fileobj=source, mode="rb"))
    if magic == _ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:
            raise LayerError("layer is zstd-compressed and the zstandard module is not installed") from None
        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(source))
    return source


# --- unpacking -------------------------------------------------------------------------------------------------


@dataclass
class _Extraction:
    root_fd: int
    whiteouts: Whiteouts
    created: set[Parts] = field(default_factory=set)
    dirs: dict[Parts, tarfile.TarInfo] = field(default_factory=dict)
    size: int = 0
    skipped_devices: int = 0
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)


def unpack(source: BinaryIO, dest: Path, whiteouts: Whiteouts = "overlay") -> UnpackResult:
    """Extract the layer in the seekable file `source` (tar, gzip or zstd) into the existing directory `dest`."""
    reader = _HashingReader(_decompressed(source))
    root_fd = os.open(dest, _DIR_FLAGS)
    try:
        ex = _Extraction(root_fd, whiteouts)
        try:
            with tarfile.open(fileobj=io.BufferedReader(reader, _CHUNK), mode="r|") as tar:
                for member in tar:
                    _extract(ex, tar, member)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise LayerError(f"corrupt layer archive: {exc}") from exc
        _finish_dirs(ex)
        reader.drain()
    finally:
        os.close(root_fd)
    return UnpackResult("sha256:" + reader.hasher.hexdigest(), ex.size, ex.skipped_devices)


def _extract(ex: _Extraction, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
    parts = clean_path(member.name)
    if not parts:
        return  # the root directory's own entry: the destination keeps its metadata
    special = whiteout_target(parts)
    if special is not None:
        kind, target = special
        if kind == "opaque":
            _opaque(ex, target)
        else:
            _whiteout(ex, target)
        return
    if member.ischr() or member.isblk():
        ex.skipped_devices += 1
        return
    with _parent(ex, parts[:-1]) as parent_fd:
        name = parts[-1]
        existing = _lstat(name, parent_fd)
        replaced_whiteout = existing is not None and is_whiteout_device(existing)
        if member.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                _remove(name, parent_fd, existing)
                os.mkdir(name, 0o700, dir_fd=parent_fd)
            ex.dirs[parts] = member
            if replaced_whiteout and ex.whiteouts == "overlay":
                # Deleted and recreated in this layer: nothing of the lower directory may show through.
                _set_opaque(parent_fd, name)
        else:
            _remove(name, parent_fd, existing)
            if member.isreg():
                _write_file(ex, tar, member, parent_fd, name)
            elif member.issym():
                os.symlink(member.linkname, name, dir_fd=parent_fd)
                _set_owner_and_times(ex, member, parent_fd, name, chmod=False)
            elif member.islnk():
                _hardlink(ex, member, parent_fd, name)
            elif member.isfifo():
                os.mkfifo(name, 0o600, dir_fd=parent_fd)
                _set_owner_and_times(ex, member, parent_fd, name, chmod=True)
            else:
                raise LayerError(f"unsupported tar entry type {member.type!r} for {member.name!r}")
    ex.created.add(parts)


def _write_file(ex: _Extraction, tar: tarfile.TarFile, member: tarfile.TarInfo, parent_fd: int, name: str) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent_fd)
    with os.fdopen(fd, "wb") as out:
        data = tar.extractfile(member)
        if data is not None:
            shutil.copyfileobj(data, out, _CHUNK)
        _set_xattrs(out.fileno(), member)
    ex.size += member.size
    _set_owner_and_times(ex, member, parent_fd, name, chmod=True)


def _hardlink(ex: _Extraction, member: tarfile.TarInfo, parent_fd: int, name: str) -> None:
    target = clean_path(member.linkname)
    if not target:
        raise LayerError(f"refusing hard link to the root: {member.name!r}")
    with _parent(ex, target[:-1], create=False) as target_parent:
        st = _lstat(target[-1], target_parent)
        if st is None:
            raise LayerError(f"hard link {member.name!r} points to missing {member.linkname!r}")
        if stat.S_ISDIR(st.st_mode):
            raise LayerError(f"refusing hard link to a directory: {member.name!r}")
        os.link(target[-1], name, src_dir_fd=target_parent, dst_dir_fd=parent_fd, follow_symlinks=False)


def _whiteout(ex: _Extraction, target: Parts) -> None:
    # A whiteout hides only lower layers; an entry this layer made itself stays (image-layer.md, Whiteouts).
    if target in ex.created:
        return
    with _parent(ex, target[:-1]) as parent_fd:
        name = target[-1]
        existing = _lstat(name, parent_fd)
        if ex.whiteouts == "delete":
            _remove(name, parent_fd, existing)
            return
        _remove(name, parent_fd, existing)
        try:
            os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent_fd)
        except PermissionError:
            raise LayerError("whiteouts need root: creating an overlay whiteout device requires CAP_MKNOD") from None


def _opaque(ex: _Extraction, directory: Parts) -> None:
    if directory and directory not in ex.created:
        with _parent(ex, directory[:-1]) as parent_fd:
            existing = _lstat(directory[-1], parent_fd)
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                _remove(directory[-1], parent_fd, existing)
                os.mkdir(directory[-1], 0o755, dir_fd=parent_fd)
    if ex.whiteouts == "overlay":
        with _parent(ex, directory) as dir_fd:
            try:
                os.setxattr(dir_fd, OPAQUE_XATTR, b"y")
            except PermissionError:
                raise LayerError("opaque whiteouts need root: trusted.* xattrs require CAP_SYS_ADMIN") from None
        return
    # Applied in place: remove the lower layers' children, keep what this layer already put there.
    with _parent(ex, directory) as dir_fd:
        for child in os.listdir(dir_fd):
            if (*directory, child) not in ex.created:
                _remove(child, dir_fd, _lstat(child, dir_fd))


def _set_opaque(parent_fd: int, name: str) -> None:
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        os.setxattr(fd, OPAQUE_XATTR, b"y")
    finally:
        os.close(fd)


def _finish_dirs(ex: _Extraction) -> None:
    # Directory metadata goes last and deepest first: creating children changes a directory's mtime, and a
    # read-only mode would stop an unprivileged extraction from creating them.
    for parts in sorted(ex.dirs, key=len, reverse=True):
        member = ex.dirs[parts]
        with _parent(ex, parts[:-1], create=False) as parent_fd:
            fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent_fd)
            try:
                _set_xattrs(fd, member)
            finally:
                os.close(fd)
            _set_owner_and_times(ex, member, parent_fd, parts[-1], chmod=True)


def _set_owner_and_times(ex: _Extraction, member: tarfile.TarInfo, parent_fd: int, name: str, chmod: bool) -> None:
    if ex.as_root:
        os.chown(name, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
    if chmod:
        # After chown, which clears set-id bits.
        os.chmod(name, stat.S_IMODE(member.mode), dir_fd=parent_fd)
    mtime_ns = int(member.mtime * 1_000_000_000)
    os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=parent_fd, follow_symlinks=False)


def _set_xattrs(fd: int, member: tarfile.TarInfo) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith(_XATTR_PAX_PREFIX):
            continue
        attr = key[len(_XATTR_PAX_PREFIX) :]
        raw = value.encode("utf-8", "surrogateescape")
        try:
            os.setxattr(fd, attr, raw)
        except OSError as exc:
            # Like Docker: xattrs the filesystem or our privileges cannot hold are dropped, not fatal.
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL):
                raise


@contextlib.contextmanager
def _parent(ex: _Extraction, parts: Parts, create: bool = True) -> Iterator[int]:
    """A descriptor for the directory `parts` below the root, creating missing directories (0755, as Docker
    does) and refusing any component that is a symlink or not a directory."""
    fd = os.dup(ex.root_fd)
    try:
        for i, part in enumerate(parts):
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise LayerError(f"missing directory {'/'.join(parts[: i + 1])!r} in layer") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                ex.created.add(parts[: i + 1])
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    st = _lstat(part, fd)
                    what = "a symlink" if st is not None and stat.S_ISLNK(st.st_mode) else "not a directory"
                    raise LayerError(
                        f"refusing path through {'/'.join(parts[: i + 1])!r}: it is {what} (possible escape)"
                    ) from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(name: str, dir_fd: int, st: os.stat_result | None) -> None:
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        # rmtree with dir_fd never follows symlinks inside the tree it removes.
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


# --- flattening ------------------------------------------------------------------------------------------------


def flatten(layer_dirs: list[Path], dest: Path) -> None:
    """Merge overlay-format layer directories, bottom first, into the existing directory `dest`: what overlayfs
    would show, as a private copy. Whiteout devices delete, opaque directories drop lower children."""
    as_root = os.geteuid() == 0
    for layer_dir in layer_dirs:
        _merge_dir(layer_dir, dest, as_root, {})


def _merge_dir(src: Path, dst: Path, as_root: bool, inodes: dict[tuple[int, int], Path]) -> None:
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        target = dst / entry.name
        existing = _lstat_path(target)
        if is_whiteout_device(st):
            _remove_path(target, existing)
            continue
        if stat.S_ISDIR(st.st_mode):
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                _remove_path(target, existing)
                target.mkdir(mode=0o700)
            elif _is_opaque(Path(entry.path)):
                for child in list(target.iterdir()):
                    _remove_path(child, _lstat_path(child))
            _merge_dir(Path(entry.path), target, as_root, inodes)
            _copy_meta(Path(entry.path), target, st, as_root)
            continue
        _remove_path(target, existing)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in inodes:
            os.link(inodes[key], target, follow_symlinks=False)
            continue
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(entry.path), target)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(entry.path, target, follow_symlinks=False)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(target, 0o600)
        else:
            raise LayerError(f"unexpected file type in layer directory: {entry.path}")
        _copy_meta(Path(entry.path), target, st, as_root)
        if st.st_nlink > 1:
            inodes[key] = target


def _copy_meta(src: Path, dst: Path, st: os.stat_result, as_root: bool) -> None:
    if as_root:
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        shutil.copystat(src, dst, follow_symlinks=False)
        with contextlib.suppress(OSError):
            os.removexattr(dst, OPAQUE_XATTR, follow_symlinks=False)
    else:
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat_path(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _remove_path(path: Path, st: os.stat_result | None) -> None:
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()
