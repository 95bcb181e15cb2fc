"""`cp`, `diff` and `export`: a container's files, with Docker's path rules and ownership as the
Docker engine and CLI set it (copied in: the source's owners, or with `-a` the container's user;
copied out: the caller's, `-a` or not)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from runtime.containerfs import changes, mounted_root, write_root, write_tree
from runtime.containers import Container, ContainerError, ContainerStore

__all__ = ["cmd_cp", "cmd_diff", "cmd_export", "refuse_terminal"]


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
    """A tar of `src` in a real temporary file, so that a forked child can read or write it."""
    spool = tempfile.TemporaryFile()
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


def _in_root(root: Path, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `work` in a child chrooted into the container's root. Every path it resolves, symlinks
    included, stays inside the container, whatever the container's processes change meanwhile
    (a path under /proc/<pid>/root followed from the host could be turned towards the host's
    files between a check and its use)."""
    from runtime.layers import LayerError

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            os.chroot(root)
            os.chdir("/")
            result: dict[str, Any] = {"ok": work()}
        except (ContainerError, OSError, tarfile.TarError, LayerError) as exc:
            result = {"error": str(exc)}
        except BaseException as exc:  # the child must report and exit, never return into the CLI
            result = {"error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(BaseException):
            os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data) if data else {"error": "the copy ended without a result"}
    if "error" in result:
        raise ContainerError(result["error"])
    ok: dict[str, Any] = result["ok"]
    return ok


def _copy_in(c: Container, src: str, dest: str, archive: bool) -> None:
    stdin = src == "-"
    source = Path(src)
    if not stdin and not os.path.lexists(source):
        raise ContainerError(f"stat {src}: no such file or directory")
    src_is_dir = not stdin and source.is_dir() and not source.is_symlink()
    # What the Docker engine does: the source's owners, or with -a the container's user.
    owner = (c.spec.process.uid, c.spec.process.gid) if archive else None
    target = dest if dest.startswith("/") else "/" + dest
    if stdin:
        spool: BinaryIO = tempfile.TemporaryFile()
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
        with spool, mounted_root(c) as root:
            _in_root(root, lambda: _extract(spool, target, check=True))
        return
    src_name = source.resolve().name  # resolved here, on the host: the child sees the container's files

    def decide() -> dict[str, Any]:
        where, new = _destination(Path(target), dest, src_is_dir, src_name, f"container {c.name}")
        contents = src_is_dir and where == Path(target) and _contents_only(src)
        return {"directory": str(where), "name": new, "contents": contents}

    with mounted_root(c) as root:
        decided = _in_root(root, decide)
        with _tar_of(source, decided["name"], decided["contents"], owner) as spool:
            _in_root(root, lambda: _extract(spool, decided["directory"], check=False))


def _extract(spool: BinaryIO, directory: str, check: bool) -> dict[str, Any]:
    from runtime.layers import unpack

    if check and not Path(directory).is_dir():
        raise ContainerError(f"extraction point is not a directory: {directory}")
    # Symlinks on the way are followed, as Docker does; in the chroot they stay in the container.
    unpack(spool, Path(os.path.realpath(directory)), whiteouts="delete")
    return {}


def _copy_out(c: Container, src: str, dest: str) -> None:
    path = src if src.startswith("/") else "/" + src
    parent, base = os.path.split(path.rstrip("/") or "/")
    whole = _contents_only(path) or base in ("", ".")
    name = "." if whole else base

    def look() -> dict[str, Any]:
        source = Path(path) if whole else Path(os.path.realpath(parent)) / base
        if not os.path.lexists(source):
            raise ContainerError(f"Could not find the file {path} in container {c.name}")
        return {"source": str(source), "is_dir": source.is_dir() and not source.is_symlink()}

    if dest == "-":
        refuse_terminal(sys.stdout.buffer, "a tar archive")

        def stream() -> dict[str, Any]:
            source = Path(look()["source"])
            with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                write_tree(tar, source, "" if name == "." else name)
            sys.stdout.buffer.flush()
            return {}

        with mounted_root(c) as root:
            _in_root(root, stream)
        return
    with mounted_root(c) as root:
        found = _in_root(root, look)
        target = Path(dest)
        directory, new_name = _destination(target, dest, found["is_dir"], name, "the local filesystem")
        contents = found["is_dir"] and directory == target and _contents_only(path)
        # The Docker CLI extracts as the caller, with or without -a.
        owner = (os.getuid(), os.getgid())
        spool = tempfile.TemporaryFile()

        def pack() -> dict[str, Any]:
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
                write_tree(tar, Path(found["source"]), "" if contents else new_name, owner)
            spool.flush()  # the child leaves by os._exit, which flushes no buffer
            return {}

        _in_root(root, pack)
    with spool:
        spool.seek(0)
        with tarfile.open(fileobj=spool, mode="r") as tar:
            tar.extractall(target if contents else directory, numeric_owner=True, filter="tar")


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
        _copy_out(store.get(src_name), src_path, dst_path)
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
    if not args.output:
        refuse_terminal(sys.stdout.buffer, "output")
    with contextlib.ExitStack() as stack:
        out: BinaryIO = stack.enter_context(open(args.output, "wb")) if args.output else sys.stdout.buffer
        root = stack.enter_context(mounted_root(c, volumes=False))

        def write() -> dict[str, Any]:
            # In the chroot: the walk cannot be led out of the container by a symlink swapped in.
            write_root(out, Path("/"), one_device=running)
            out.flush()
            return {}

        _in_root(root, write)
    return 0
