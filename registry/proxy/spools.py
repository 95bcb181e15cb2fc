"""Fills shared between the processes of one machine (a server's workers, `dockyard mirror warm`):
the first process to claim a digest downloads it into a spool file in a private directory; the
others follow that file as it grows, instead of downloading the blob again.

The owner holds an exclusive `flock` on its spool for as long as it works, and removes the file
before letting go, so a spool whose lock is free was left by a process that died: it is removed
and claimed afresh. A follower trusts nothing it reads: it hashes the bytes itself (`fill.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from oci.digest import Digest
from registry.config import Config

_ATTEMPTS = 3


def spool_directory(config: Config) -> Path:
    """One directory per storage, so every process serving it finds the others' spools."""
    storage = repr((config.storage.driver, config.storage.driver_options)).encode()
    path = Path(tempfile.gettempdir()) / "dockyard-fills" / hashlib.sha256(storage).hexdigest()[:16]
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    return path


class Claim:
    """This process downloads the digest; `spool` is where its bytes go."""

    def __init__(self, spool: BinaryIO, lock: BinaryIO | None = None, part: Path | None = None) -> None:
        self.spool = spool
        self._lock = lock
        self._part = part

    def announce(self, size: int | None) -> None:
        """Tell followers the blob's length (empty: unknown) before the first byte."""
        if self._part is None:
            return
        sized = self._part.with_suffix(".size")
        temporary = sized.with_suffix(f".size.{os.getpid()}")
        temporary.write_text("" if size is None else str(size))
        temporary.replace(sized)

    def release(self) -> None:
        if self._part is not None:
            for path in (self._part, self._part.with_suffix(".size")):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        if self._lock is not None:
            self._lock.close()  # the flock goes with it, after the files are gone


class Follow:
    """Another process's download, read as it grows."""

    def __init__(self, source: BinaryIO, part: Path) -> None:
        self.source = source
        self.part = part

    def owner_gone(self) -> bool:
        try:
            fcntl.flock(self.source.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(self.source.fileno(), fcntl.LOCK_UN)
        return True

    def announced(self) -> tuple[bool, int | None]:
        """(whether the owner has announced the length, the length or None when unknown)."""
        try:
            text = self.part.with_suffix(".size").read_text()
        except FileNotFoundError:
            return False, None
        return True, int(text) if text.strip() else None

    def available(self) -> int:
        return os.fstat(self.source.fileno()).st_size

    def read(self, count: int, offset: int) -> bytes:
        return os.pread(self.source.fileno(), count, offset)

    def close(self) -> None:
        self.source.close()


class Spools:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def claim(self, digest: Digest) -> Claim | Follow:
        if self.directory is None:
            return Claim(tempfile.TemporaryFile(prefix="dockyard-fill-"))
        part = self.directory / f"{digest.algorithm}-{digest.encoded}.part"
        for _ in range(_ATTEMPTS):
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".claim-")
            spool = os.fdopen(descriptor, "r+b")
            lock = open(temporary, "rb")  # held for the whole download: its flock says the owner is alive
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                os.link(temporary, part)  # atomic: exactly one process wins the name
            except FileExistsError:
                lock.close()
                spool.close()
                os.unlink(temporary)
            else:
                os.unlink(temporary)
                return Claim(spool, lock, part)
            try:
                source = open(part, "rb")
            except FileNotFoundError:
                continue  # the owner just finished: try again
            follow = Follow(source, part)
            if not follow.owner_gone():
                return follow
            # Left by a process that died mid-download: remove it (if it is still that file) and claim anew.
            with contextlib.suppress(FileNotFoundError):
                if os.stat(part).st_ino == os.fstat(source.fileno()).st_ino:
                    part.unlink()
            follow.close()
        return Claim(tempfile.TemporaryFile(prefix="dockyard-fill-"))
