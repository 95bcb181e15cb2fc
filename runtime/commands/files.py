"""`cp`, `diff` and `export`: a container's files, with Docker's path rules and ownership as the
Docker engine and CLI set it (copied in: the source's owners, or with `-a` the container's user;
copied out: the caller's, `-a` or not)."""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from runtime import rootfs
from runtime.containerfs import changes, mounted_root, write_root, write_tree
from runtime.containers import Container, ContainerError, ContainerStore

__all__ = ["cmd_cp", "cmd_diff", "cmd_export", "refuse_terminal"]

_SPOOL = 1 << 24


def _store() -> ContainerStore:
    from runtime.images import default_root

    return ContainerStore(default_root())


def _split(arg: str) -> tuple[str | None, str]:
    """`NAME:PATH` -> (NAME, PATH); a local path (which may contain ':' after a '/') -> (None, PATH)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


def refuse_terminal(out: BinaryIO, what: str) -> None:
    if os.isatty(out.fileno()):
        raise ContainerError(f"cowardly refusing to save {what} to a terminal. Use the -o flag or redirect")


def _tar_of(src: Path, name: str, contents_only: bool, owner: tuple[int, int] | None) -> BinaryIO:
    spool: BinaryIO = tempfile.SpooledTemporaryFile(_SPOOL)  # type: ignore[assignment]
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        write_tree(tar, src, "" if contents_only else name, owner)
    spool.seek(0)
    return spool


def _destination(dest: Path, dest_arg: str, src_is_dir: bool, src_name: str, where: str) -> tuple[Path, str]:
    """Docker's rules: (directory to extract into, name the source takes there)."""
    if dest.is_dir():
        return dest, src_name
    if dest.exists():
        if src_is_dir:
            raise ContainerError(f"cannot copy a directory to a file: {dest_arg}")
        return dest.parent, dest.name
    if dest_arg.endswith("/") and not src_is_dir:
        raise ContainerError(f"no such directory: {dest_arg}")
    if not dest.parent.is_dir():
        raise ContainerError(f"Could not find the file {os.path.dirname(dest_arg.rstrip('/')) or '/'} in {where}")
    return dest.parent, dest.name


def _contents_only(path: str) -> bool:
    return path.endswith(("/.", "/./")) or path == "."


def _copy_in(c: Container, src: str, dest: str, archive: bool) -> None:
    from runtime.layers import unpack

    stdin = src == "-"
    source = Path(src)
    if not stdin and not os.path.lexists(source):
        raise ContainerError(f"stat {src}: no such file or directory")
    src_is_dir = not stdin and source.is_dir() and not source.is_symlink()
    # What the Docker engine does: the source's owners, or with -a the container's user.
    owner = (c.spec.process.uid, c.spec.process.gid) if archive else None
    with mounted_root(c) as root:
        target = rootfs.resolve_in_root(root, dest if dest.startswith("/") else "/" + dest)
        if stdin:
            if not target.is_dir():
                raise ContainerError(f"extraction point is not a directory: {dest}")
            data: BinaryIO = tempfile.SpooledTemporaryFile(_SPOOL)  # type: ignore[assignment]
            while chunk := sys.stdin.buffer.read(1 << 20):
                data.write(chunk)
            data.seek(0)
            unpack(data, target, whiteouts="delete")
            return
        directory, name = _destination(target, dest, src_is_dir, source.resolve().name, f"container {c.name}")
        if src_is_dir and directory == target and _contents_only(src):
            unpack(_tar_of(source, "", True, owner), target, whiteouts="delete")
            return
        unpack(_tar_of(source, name, False, owner), directory, whiteouts="delete")


def _copy_out(c: Container, src: str, dest: str, archive: bool) -> None:
    path = src if src.startswith("/") else "/" + src
    with mounted_root(c) as root:
        parent, base = os.path.split(path.rstrip("/") or "/")
        if _contents_only(path) or base in ("", "."):
            source = rootfs.resolve_in_root(root, path)
        else:
            source = rootfs.resolve_in_root(root, parent) / base
        if not os.path.lexists(source):
            raise ContainerError(f"Could not find the file {path} in container {c.name}")
        src_is_dir = source.is_dir() and not source.is_symlink()
        name = base if base not in ("", ".") else "."
        if dest == "-":
            refuse_terminal(sys.stdout.buffer, "a tar archive")
            with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                write_tree(tar, source, name if name != "." else "")
            return
        # The Docker CLI extracts as the caller, with or without -a.
        owner = (os.getuid(), os.getgid())
        target = Path(dest)
        directory, new_name = _destination(target, dest, src_is_dir, name, "the local filesystem")
        if src_is_dir and directory == target and _contents_only(path):
            spool, into = _tar_of(source, "", True, owner), target
        else:
            spool, into = _tar_of(source, new_name, False, owner), directory
        with tarfile.open(fileobj=spool, mode="r") as tar:
            tar.extractall(into, numeric_owner=True, filter="tar")


def cmd_cp(args: argparse.Namespace) -> int:
    from runtime.layers import LayerError

    try:
        return _cp(args)
    except (OSError, tarfile.TarError, LayerError) as exc:
        raise ContainerError(f"cp: {exc}") from None


def _cp(args: argparse.Namespace) -> int:
    src_name, src_path = _split(args.source)
    dst_name, dst_path = _split(args.destination)
    if (src_name is None) == (dst_name is None):
        raise ContainerError("must specify at least one container source" if src_name is None else
                             "copying between containers is not supported")  # fmt: skip
    store = _store()
    if src_name is not None:
        _copy_out(store.get(src_name), src_path, dst_path, args.archive)
    else:
        assert dst_name is not None
        _copy_in(store.get(dst_name), src_path, dst_path, args.archive)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    for change in changes(_store().get(args.container)):
        print(change)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    c = _store().get(args.container)
    running = c.state().status == "running"
    with mounted_root(c, volumes=False) as root:
        if args.output:
            with open(args.output, "wb") as out:
                write_root(out, root, one_device=running)
        else:
            refuse_terminal(sys.stdout.buffer, "output")
            write_root(sys.stdout.buffer, root, one_device=running)
            sys.stdout.buffer.flush()
    return 0
