"""RUN: the command in the runtime's own sandbox (namespaces, cgroups, seccomp, the overlay root), as a
container of the layers built so far; its overlay upper directory is the step's change.

Below the container layer goes an init layer, as Docker's: the mount points the runtime needs (/proc,
/sys, /dev, /etc/hostname, /etc/hosts, /etc/resolv.conf) made there when the image lacks them, so they
never appear in the step's layer."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.build.overlay import in_overlay
from runtime.containers import ContainerStore
from runtime.rootfs import resolve_in_root
from runtime.spec import ContainerSpec, NetworkMode, ProcessSpec
from runtime.users import UserError, read_from_layers, resolve_user

__all__ = ["RunRequest", "run_step"]

_MOUNT_POINTS = (("/proc", True), ("/sys", True), ("/dev", True))
_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


class RunError(Exception):
    pass


@dataclass(frozen=True)
class RunRequest:
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str
    network: NetworkMode
    # No VOLUME is mounted during a RUN, as in BuildKit: what a command writes under a VOLUME path is kept
    # in the layer (Docker's classic builder mounted an anonymous volume there and dropped it).


def _stubs(root: Path, _views: dict[str, Path]) -> None:
    for path, _ in _MOUNT_POINTS:
        target = resolve_in_root(root, path)
        if not os.path.lexists(target):
            target.mkdir(mode=0o755, parents=True)
    for path in _FILES:
        target = resolve_in_root(root, path)
        if not os.path.lexists(target):
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            target.touch(mode=0o644)


def run_step(root: Path, layers: Sequence[Path], scratch: Path, request: RunRequest) -> tuple[int, Path]:
    """Run the command; returns its exit code and the directory holding its change (inside `scratch`)."""
    from runtime.commands.run import run_attached

    init = scratch / "init"
    init.mkdir()
    in_overlay(layers, init, scratch / "init-step", _stubs)
    all_layers = [*layers, init]
    try:
        info = resolve_user(request.user, read_from_layers(all_layers))
    except UserError as exc:
        raise RunError(str(exc)) from None
    store = ContainerStore(root)
    cid = store.new_id()
    spec = ContainerSpec(
        id=cid,
        name=f"dockyard-build-{cid[:12]}",
        image="",
        image_id="",
        layers=tuple(str(p) for p in all_layers),
        process=ProcessSpec(
            args=request.argv,
            env=request.env,
            cwd=request.cwd or "/",
            uid=info.uid,
            gid=info.gid,
            groups=info.groups,
        ),
        hostname=cid[:12],
        user=request.user,
        mounts=(),
        network=request.network,
    )
    container = store.create(spec)
    try:
        code = run_attached(store, container, detach=False, stdin=False, terminal=False)
        change = scratch / "change"
        os.rename(container.dir / "upper", change)
    finally:
        from runtime import container as lifecycle

        lifecycle.remove(store, container, force=True)
        shutil.rmtree(container.dir, ignore_errors=True)
    return code, change
