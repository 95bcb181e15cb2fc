"""Filesystem steps of a build (COPY, ADD, WORKDIR, the RUN init layer) done on an overlay of the image's
layers, so the upper directory holds exactly the change, in overlay format, as it does for RUN.

Each step runs in a forked child that unshares its mount namespace (the parent may have threads; a forked
child has one) and mounts there: nothing is ever mounted on the host, and the mounts end with the child.
The step's exception comes back to the parent as a `StepError` with the same message."""

from __future__ import annotations

import os
import shutil
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from runtime import rootfs, syscalls

__all__ = ["StepError", "in_overlay"]

_CLONE_NEWNS = 0x00020000


class StepError(Exception):
    pass


def _mount_view(layers: Sequence[Path], target: Path) -> None:
    """A read-only view of `layers` (bottom to top) at `target`."""
    if not layers:
        return  # `target` is an empty directory: scratch
    if len(layers) == 1:
        syscalls.mount(layers[0], target, None, syscalls.MS_BIND)
        syscalls.mount(None, target, None, syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)
        return
    lowerdir = ":".join(rootfs.escape_overlay_path(str(p)) for p in reversed(layers))
    if len(lowerdir) >= 4000:
        os.chdir(os.path.commonpath([str(p) for p in layers]))
        lowerdir = ":".join(rootfs.escape_overlay_path(os.path.relpath(p)) for p in reversed(layers))
    syscalls.mount("overlay", target, "overlay", syscalls.MS_RDONLY, f"lowerdir={lowerdir}")


def in_overlay(
    layers: Sequence[Path],
    upper: Path,
    scratch: Path,
    step: Callable[[Path, dict[str, Path]], None],
    views: dict[str, Sequence[Path]] | None = None,
) -> None:
    """Run `step(root, mounted_views)` in a child where `root` is the overlay of `layers` with `upper` as
    its upper directory, and each of `views` (name -> layers) is mounted read-only. `scratch` is an empty
    directory on the same filesystem as `upper`, used for the work and mount directories."""
    scratch.mkdir(parents=True, exist_ok=True)
    work, target, empty = scratch / "work", scratch / "root", scratch / "empty"
    for d in (work, target, empty):
        d.mkdir(exist_ok=True)
    view_dirs = {name: scratch / f"view-{i}" for i, name in enumerate(views or {})}
    for d in view_dirs.values():
        d.mkdir(exist_ok=True)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        os.close(read_fd)
        code = 0
        try:
            syscalls.unshare(_CLONE_NEWNS)
            syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
            rootfs.mount_rootfs([str(p) for p in layers] or [str(empty)], upper, work, target)
            for name, d in view_dirs.items():
                _mount_view((views or {})[name], d)
            step(target, view_dirs)
        except BaseException as exc:
            message = str(exc) if isinstance(exc, StepError | OSError | ValueError) else traceback.format_exc()
            os.write(write_fd, (message or type(exc).__name__).encode("utf-8", "replace"))
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    with os.fdopen(read_fd, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(work, ignore_errors=True)
    if os.waitstatus_to_exitcode(status) != 0:
        raise StepError(b"".join(chunks).decode("utf-8", "replace") or "filesystem step failed")
