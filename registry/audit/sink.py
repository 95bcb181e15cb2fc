"""Where audit lines go: standard error or a file opened with O_APPEND.

Each line is one `write()` of a whole line, so lines from several worker processes never
interleave: the kernel appends each write at the end of a file as one piece, and a pipe keeps
writes of up to PIPE_BUF (4096) bytes whole (the record keeps its free-text fields short for it).
A file moved away (logrotate without `copytruncate`) is noticed at the next line and reopened.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import orjson

from registry.audit.config import AuditConfig
from typedconfig import ConfigError

log = logging.getLogger("dockyard.audit")

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class AuditSink:
    def __init__(self, config: AuditConfig) -> None:
        self._path = None if config.to_stderr else config.path
        self._fd = -1
        self._inode = 0
        self._failing = False
        self._open()

    def _open(self) -> None:
        if self._path is None:
            self._fd = sys.stderr.fileno()
            return
        try:
            fd = os.open(self._path, _FLAGS, 0o640)
        except OSError as exc:
            raise ConfigError(f"audit.path: cannot open {self._path} for appending: {exc.strerror}") from None
        stat = os.fstat(fd)
        if not _regular_or_stream(stat.st_mode):
            os.close(fd)
            raise ConfigError(f"audit.path: {self._path} is not a file")
        self._fd, self._inode = fd, stat.st_ino

    def write(self, record: dict[str, Any]) -> None:
        """Append one line; a failing write is logged (once until it works again), never raised."""
        line = orjson.dumps(record) + b"\n"
        try:
            self._reopen_if_moved()
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(f"short write ({written} of {len(line)} bytes)")
            self._failing = False
        except (OSError, ConfigError) as exc:
            if not self._failing:
                log.error("audit log: cannot write to %s: %s", self._path or "stderr", exc)
            self._failing = True

    def _reopen_if_moved(self) -> None:
        if self._path is None:
            return
        try:
            current = os.stat(self._path).st_ino
        except FileNotFoundError:
            current = -1
        if current != self._inode:
            old = self._fd
            self._open()
            os.close(old)

    def close(self) -> None:
        if self._path is not None and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _regular_or_stream(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def check(config: AuditConfig) -> None:
    """Fail at start (ConfigError naming the key) when the audit file cannot be opened."""
    if config.enabled:
        AuditSink(config).close()
