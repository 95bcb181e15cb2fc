"""COPY and ADD into a mounted root, with Docker's rules:

- a directory source copies its contents, not itself; a file goes to `DEST` itself unless DEST ends in `/`,
  is an existing directory or several sources are given, when it goes to `DEST/<name>`;
- missing directories on the way are made 0755, owned by --chown's user or root;
- files from the build context are owned by root (as the docker CLI sends them), files from another stage
  keep their owners; --chown and --chmod override; modes, times, symlinks and hard links are kept;
- ADD extracts a local tar archive (plain, gzip, bzip2 or xz) into DEST instead of copying it.

Every path inside the root is resolved with `rootfs.resolve_in_root`, so an absolute symlink in the image
leads inside the image, never to the host."""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from runtime.build.ignore import IgnoreRules
from runtime.build.overlay import StepError
from runtime.build.sources import expand_source, walk
from runtime.rootfs import resolve_in_root

__all__ = ["CopySpec", "is_archive", "perform_copy"]

_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


@dataclass(frozen=True)
class CopySpec:
    keyword: str  # COPY or ADD
    sources: tuple[str, ...]
    dest: str  # absolute, WORKDIR applied; a trailing "/" kept
    owner: tuple[int, int] | None = None  # --chown, resolved
    chmod: int | None = None
    keep_owners: bool = False  # sources from another stage or image
    rules: IgnoreRules | None = None  # the context's .dockerignore


def is_archive(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    return head.startswith(_ARCHIVE_MAGIC) or (len(head) >= 262 and head[257:262] == b"ustar")


class _Copier:
    def __init__(self, spec: CopySpec, root: Path, src_root: Path) -> None:
        self.spec, self.root, self.src_root = spec, root, src_root
        self.links: dict[tuple[int, int], Path] = {}
        self.dirs: list[tuple[Path, os.stat_result]] = []

    def resolve(self, container_path: str) -> Path:
        return resolve_in_root(self.root, container_path)

    def owner_of(self, st: os.stat_result | None) -> tuple[int, int]:
        if self.spec.owner is not None:
            return self.spec.owner
        if self.spec.keep_owners and st is not None:
            return st.st_uid, st.st_gid
        return 0, 0

    def ensure_dir(self, container_path: str) -> Path:
        current = "/"
        for part in [p for p in container_path.split("/") if p]:
            current = posixpath.join(current, part)
            path = self.resolve(current)
            if not os.path.lexists(path):
                os.mkdir(path, 0o755)
                os.chmod(path, 0o755)
                os.lchown(path, *self.owner_of(None))
            elif not path.is_dir():
                raise StepError(
                    f"{self.spec.keyword} failed: cannot copy to {container_path}: {current} is not a directory"
                )
        return self.resolve(container_path)

    def place(self, source: Path, st: os.stat_result, parent: Path, name: str) -> None:
        """Create `parent/name` (parent already resolved inside the root) as a copy of `source`."""
        target = parent / name
        existing = None
        with contextlib.suppress(FileNotFoundError):
            existing = os.lstat(target)
        is_dir = stat.S_ISDIR(st.st_mode)
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode) and is_dir:
                self.dirs.append((target, st))
                return
            if stat.S_ISDIR(existing.st_mode):
                where = target.relative_to(self.root)
                raise StepError(f"{self.spec.keyword} failed: cannot overwrite directory /{where} with a non-directory")
            os.unlink(target)
        key = (st.st_dev, st.st_ino)
        if not is_dir and st.st_nlink > 1 and key in self.links:
            os.link(self.links[key], target, follow_symlinks=False)
            return
        if is_dir:
            os.mkdir(target, 0o700)
            self.dirs.append((target, st))
            return
        if stat.S_ISREG(st.st_mode):
            shutil.copyfile(source, target, follow_symlinks=False)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), target)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(target, 0o600)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            os.mknod(target, st.st_mode, st.st_rdev)
        else:
            return  # sockets are not copied
        self.finish(target, st)
        if st.st_nlink > 1:
            self.links[key] = target

    def finish(self, target: Path, st: os.stat_result) -> None:
        os.lchown(target, *self.owner_of(st))
        if not stat.S_ISLNK(st.st_mode):
            mode = self.spec.chmod if self.spec.chmod is not None else stat.S_IMODE(st.st_mode)
            os.chmod(target, mode)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    def copy_tree(self, rel: str, dest_dir: str) -> None:
        """The contents of the source directory `rel` into the container directory `dest_dir`."""
        top = self.ensure_dir(dest_dir)
        for child, st in walk(self.src_root, rel, self.spec.rules):
            if child == rel:
                continue
            inner = child[len(rel) + 1 :] if rel else child
            parent_rel = posixpath.dirname(inner)
            parent = self.ensure_dir(posixpath.join(dest_dir, parent_rel)) if parent_rel else top
            self.place(self.src_root / child, st, parent, posixpath.basename(inner))

    def extract(self, source: Path, dest_dir: str) -> None:
        target = self.ensure_dir(dest_dir)
        try:
            with tarfile.open(source, "r:*") as archive:
                archive.extractall(target, numeric_owner=True, filter="tar")
        except (tarfile.TarError, OSError) as exc:
            raise StepError(f"ADD failed: cannot extract {source.name}: {exc}") from None

    def run(self) -> None:
        spec = self.spec
        matches: list[str] = []
        for pattern in spec.sources:
            found = expand_source(self.src_root, pattern, spec.rules)
            if not found:
                where = "the build context" if not spec.keep_owners else "the source stage"
                raise StepError(
                    f'{spec.keyword} failed: "{pattern}" not found in {where}'
                    + (" (or excluded by .dockerignore)" if not spec.keep_owners else "")
                )
            matches += found
        dest = spec.dest
        dest_is_dir = dest.endswith("/") or len(matches) > 1 or self.resolve(dest).is_dir()
        for rel in matches:
            source = self.src_root / rel if rel else self.src_root
            st = os.lstat(source)
            if stat.S_ISDIR(st.st_mode):
                self.copy_tree(rel, dest)
            elif spec.keyword == "ADD" and stat.S_ISREG(st.st_mode) and is_archive(source):
                self.extract(source, dest)
            elif dest_is_dir:
                self.place(source, st, self.ensure_dir(dest), posixpath.basename(rel))
            else:
                parent, name = posixpath.split(dest.rstrip("/"))
                if not name:
                    raise StepError(f"{spec.keyword} failed: cannot copy a file onto the root directory")
                self.place(source, st, self.ensure_dir(parent or "/"), name)
        # Directory metadata last, deepest first: creating children changes a directory's times.
        for target, st in sorted(self.dirs, key=lambda d: len(d[0].parts), reverse=True):
            if target == self.root or not target.is_relative_to(self.root):
                continue
            self.finish(target, st)


def perform_copy(spec: CopySpec, root: Path, src_root: Path) -> None:
    _Copier(spec, root, src_root).run()
