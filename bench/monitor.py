"""Resource use of a server while a workload runs: peak memory and CPU time of all its processes.

Memory is sampled from /proc every few milliseconds. RSS summed over the processes counts the
pages they share (the interpreter, libraries) once per process, so it overstates a multi-process
server; PSS shares them out and is the fair sum. Both are reported.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # Fields after the command: state is [0], utime [11], stime [12], cutime [13], cstime [14].
    return sum(int(value) for value in fields[11:15]) / _TICKS


@dataclass
class Usage:
    peak_rss_mib: float = 0.0
    peak_pss_mib: float = 0.0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0


class Monitor:
    """`with Monitor(server.pids) as usage:` samples the processes until the block ends."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.01, memory: bool = True) -> None:
        self._pids = pids
        self._interval = interval
        self._memory = memory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_start = 0.0
        self._started = 0.0
        self.usage = Usage()

    def _cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self._pids())

    def _sample(self) -> None:
        pids = self._pids()
        rss = sum(rss_kib(pid) for pid in pids) / 1024
        pss = sum(pss_kib(pid) for pid in pids) / 1024
        self.usage.peak_rss_mib = max(self.usage.peak_rss_mib, rss)
        self.usage.peak_pss_mib = max(self.usage.peak_pss_mib, pss)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> Usage:
        self._cpu_start = self._cpu()
        self._started = time.perf_counter()
        if self._memory:
            self._sample()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self.usage

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._sample()
        self.usage.wall_seconds = time.perf_counter() - self._started
        self.usage.cpu_seconds = self._cpu() - self._cpu_start
