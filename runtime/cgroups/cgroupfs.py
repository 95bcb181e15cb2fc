"""Reading and writing cgroupfs: the few file formats and retries both versions share."""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["kill_until_empty", "read_int", "read_keyed", "read_pids", "remove_dir"]


def read_keyed(path: Path) -> dict[str, int]:
    """Parse flat keyed files ("key value" per line) such as cpu.stat or memory.events."""
    result: dict[str, int] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return result
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            result[parts[0]] = int(parts[1])
    return result


def read_int(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() else 0


def kill_until_empty(list_pids: Callable[[], list[int]], timeout: float = 5.0) -> None:
    """SIGKILL every listed process until the list is empty: a process may fork while we kill."""
    deadline = time.monotonic() + timeout
    while pids := list_pids():
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"cgroup still has processes: {pids}")
        time.sleep(0.01)


def remove_dir(path: Path, timeout: float = 2.0) -> None:
    """rmdir a cgroup. Killed tasks linger briefly after SIGKILL, so EBUSY is retried."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def read_pids(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except FileNotFoundError:
        return []
