"""A container's filesystem seen from the host, for `cp`, `diff` and `export`.

A running container's root is `/proc/<pid>/root` (its mount namespace, volumes included). A
stopped one has no mounted root, so `mounted_root()` moves the calling process into a mount
namespace of its own (unshare(2) CLONE_NEWNS; the CLI is single-threaded) and mounts the
overlay there: nothing appears on the host and the mount ends with the process. Paths inside
are resolved with `rootfs.resolve_in_root`, so a symlink in the image never leads to the host."""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from runtime import rootfs, syscalls
from runtime.containers import Container
from runtime.layers import is_whiteout_device

__all__ = ["RUNTIME_PATHS", "Change", "changes", "mounted_root", "write_root", "write_tree"]

_CLONE_NEWNS = 0x00020000
# Paths the runtime itself creates in the container layer to mount over: `diff` leaves them out,
# as Docker keeps its mount points in an init layer below the container's.
RUNTIME_PATHS = ("/proc", "/sys", "/dev", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


@contextlib.contextmanager
def mounted_root(container: Container, volumes: bool = True) -> Iterator[Path]:
    state = container.state()
    if state.status == "running":
        yield Path(f"/proc/{state.pid}/root")
        return
    syscalls.unshare(_CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    target = container.dir / "rootfs"
    copy = container.dir / "copy"
    if copy.is_dir():
        syscalls.mount(copy, target, None, syscalls.MS_BIND | syscalls.MS_REC)
    else:
        rootfs.mount_rootfs(list(container.spec.layers), container.dir / "upper", container.dir / "work", target)
    if volumes:
        for m in sorted(container.spec.mounts, key=lambda m: len(Path(m.target).parts)):
            where = rootfs.resolve_in_root(target, m.target)
            if not where.exists():
                continue  # never mounted yet: the container has not started since it was created
            syscalls.mount(m.source, where, None, syscalls.MS_BIND | syscalls.MS_REC)
    try:
        yield target
    finally:
        with contextlib.suppress(OSError):
            syscalls.umount2(target, syscalls.MNT_DETACH)


def write_tree(
    tar: tarfile.TarFile,
    path: Path,
    arcname: str,
    owner: tuple[int, int] | None = None,
    device: int | None = None,
) -> None:
    """Add `path` (not following symlinks) as `arcname`, recursively. `owner` replaces every
    entry's uid/gid; with `device`, directories of another filesystem are added empty, as
    `export` of a running container needs (its /proc, /sys, /dev and volumes are not its files)."""

    def add(current: Path, name: str) -> None:
        st = os.lstat(current)
        if stat.S_ISSOCK(st.st_mode):
            return  # tar has no sockets; Docker leaves them out too
        info = tar.gettarinfo(str(current), name)
        if owner is not None:
            info.uid, info.gid = owner
        info.uname = info.gname = ""
        if info.isreg():
            with open(current, "rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)
        if stat.S_ISDIR(st.st_mode) and (device is None or st.st_dev == device):
            for entry in sorted(os.listdir(current)):
                add(current / entry, f"{name}/{entry}" if name else entry)

    if not arcname:
        for entry in sorted(os.listdir(path)):
            add(path / entry, entry)
    else:
        add(path, arcname)


def write_root(out: BinaryIO, root: Path, one_device: bool) -> None:
    device = os.stat(root).st_dev if one_device else None
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        write_tree(tar, root, "", device=device)


class Change:
    """One line of `docker diff`: A(dded), C(hanged) or D(eleted)."""

    def __init__(self, kind: str, path: str) -> None:
        self.kind, self.path = kind, path

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"


def _in_lower(layers: list[Path], relative: str) -> bool:
    for layer in reversed(layers):
        try:
            st = os.lstat(layer / relative)
        except OSError:
            continue
        return not is_whiteout_device(st)
    return False


def changes(container: Container) -> list[Change]:
    """The container layer against the image, read from the overlay's upper directory: a
    whiteout is a deletion, an entry the image has is a change, anything else an addition."""
    upper = container.dir / "upper"
    layers = [Path(p) for p in container.spec.layers]
    mount_targets = {os.path.normpath(m.target) for m in container.spec.mounts} | set(RUNTIME_PATHS)
    found: list[Change] = []
    for directory, dirs, files in os.walk(upper):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            full = Path(directory) / name
            relative = os.path.relpath(full, upper)
            path = "/" + relative
            st = os.lstat(full)
            if is_whiteout_device(st):
                found.append(Change("D", path))
            elif _in_lower(layers, relative):
                found.append(Change("C", path))
            elif path not in mount_targets or not _empty(full, st):
                found.append(Change("A", path))
    kept = [c for c in found if not any(c.path.startswith(t + "/") for t in RUNTIME_PATHS if c.kind == "A")]
    # A directory counted as changed only because the runtime made a mount point in it.
    paths = {c.path for c in kept}
    result = []
    for c in kept:
        if c.kind == "C" and Path(upper / c.path.lstrip("/")).is_dir() and not _has_child(c.path, paths):
            if any(t.startswith(c.path + "/") for t in mount_targets):
                continue
        result.append(c)
    return sorted(result, key=lambda c: c.path)


def _has_child(path: str, paths: set[str]) -> bool:
    prefix = path.rstrip("/") + "/"
    return any(p.startswith(prefix) for p in paths)


def _empty(path: Path, st: os.stat_result) -> bool:
    if stat.S_ISDIR(st.st_mode):
        return not any(path.iterdir())
    return stat.S_ISREG(st.st_mode) and st.st_size == 0
