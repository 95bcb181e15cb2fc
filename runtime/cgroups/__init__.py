"""Control groups: one manager interface, a v2 and a v1 implementation, and `factory.new_manager()`, which
picks v2 when the unified hierarchy offers the memory, cpu and pids controllers and v1 otherwise
(the hybrid layout, where the v2 tree carries no controllers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "CONTROLLERS",
    "CgroupManager",
    "Resources",
    "Stats",
    "detect",
    "own_cgroups",
]

CONTROLLERS = ("memory", "cpu", "pids")
DEFAULT_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Resources:
    memory: int | None = None  # bytes; swap is limited to the same amount, so going past it means an OOM kill
    cpu_quota: int | None = None  # microseconds per period (CFS bandwidth control)
    cpu_period: int = 100_000
    pids: int | None = None

    @classmethod
    def from_cpus(cls, cpus: float | None, **kwargs: Any) -> Resources:
        quota = None if cpus is None else max(1000, round(cpus * 100_000))
        return cls(cpu_quota=quota, **kwargs)


@dataclass(frozen=True)
class Stats:
    memory_usage: int = 0
    memory_peak: int = 0
    oom_kills: int = 0
    pids_current: int = 0
    cpu_usage_ns: int = 0
    nr_periods: int = 0
    nr_throttled: int = 0
    throttled_ns: int = 0


class CgroupManager(Protocol):
    """One container's cgroup. `create` makes it (and is idempotent), `add` moves a process in,
    `set` writes limits (None = unlimited), `stats` reads counters (zero where a controller is
    missing), `kill_all` SIGKILLs every member until it is empty, `destroy` removes the cgroup
    (after `kill_all`; a missing cgroup is not an error). `describe` gives what `open_manager`
    needs to find the same cgroup from another process."""

    def create(self) -> None: ...
    def add(self, pid: int) -> None: ...
    def set(self, resources: Resources) -> None: ...
    def stats(self) -> Stats: ...
    def pids(self) -> list[int]: ...
    def kill_all(self) -> None: ...
    def destroy(self) -> None: ...
    def describe(self) -> dict[str, Any]: ...


def _unified_root(root: Path) -> Path | None:
    for candidate in (root, root / "unified"):
        if (candidate / "cgroup.controllers").is_file():
            return candidate
    return None


def detect(root: Path = DEFAULT_ROOT) -> tuple[str, Path]:
    """("v2", unified root) when it offers every controller we use, else ("v1", root)."""
    unified = _unified_root(root)
    if unified is not None:
        available = set((unified / "cgroup.controllers").read_text().split())
        if set(CONTROLLERS) <= available:
            return "v2", unified
    return "v1", root


def own_cgroups(proc_cgroup: str) -> dict[str, str]:
    """Map each v1 controller (and "" for the unified hierarchy) to its path in /proc/<pid>/cgroup text."""
    result: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            result[controller] = path
    return result
