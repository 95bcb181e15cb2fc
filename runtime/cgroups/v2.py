"""cgroup v2: one unified hierarchy; controllers are enabled for children through each
ancestor's cgroup.subtree_control (Documentation/admin-guide/cgroup-v2.rst)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.cgroups import CONTROLLERS, Resources, Stats, devices
from runtime.cgroups.cgroupfs import kill_until_empty, read_int, read_keyed, read_pids, remove_dir


class CgroupV2Manager:
    def __init__(self, root: Path, path: str) -> None:
        self.root = root
        self.path = path
        self.dir = root / path.lstrip("/")
        self.device_filter = False

    def create(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Each ancestor below the root must delegate the controllers to its children. The parent of
        # our cgroup holds no processes of ours, so the "no internal processes" rule is kept.
        parts = Path(self.path.lstrip("/")).parts
        current = self.root
        for part in parts[:-1] if parts else ():
            self._enable(current)
            current = current / part
        self._enable(current)

    @staticmethod
    def _enable(directory: Path) -> None:
        control = directory / "cgroup.subtree_control"
        if not control.exists():
            return
        enabled = set(control.read_text().split())
        available_file = directory / "cgroup.controllers"
        available = set(available_file.read_text().split()) if available_file.exists() else set(CONTROLLERS)
        missing = [c for c in CONTROLLERS if c in available and c not in enabled]
        if missing:
            control.write_text(" ".join(f"+{c}" for c in missing))

    def add(self, pid: int) -> None:
        (self.dir / "cgroup.procs").write_text(str(pid))

    def set(self, resources: Resources) -> None:
        self._set_memory(resources.memory)
        self._set_cpu(resources.cpu_quota, resources.cpu_period)
        self._set_pids(resources.pids)

    def _set_memory(self, limit: int | None) -> None:
        value = "max" if limit is None else str(limit)
        (self.dir / "memory.max").write_text(value)
        swap = self.dir / "memory.swap.max"
        if swap.exists():
            swap.write_text("max" if limit is None else "0")

    def _set_cpu(self, quota: int | None, period: int) -> None:
        (self.dir / "cpu.max").write_text(f"{'max' if quota is None else quota} {period}")

    def _set_pids(self, limit: int | None) -> None:
        (self.dir / "pids.max").write_text("max" if limit is None or limit <= 0 else str(limit))

    def stats(self) -> Stats:
        cpu = read_keyed(self.dir / "cpu.stat")
        return Stats(
            memory_usage=read_int(self.dir / "memory.current"),
            memory_peak=read_int(self.dir / "memory.peak"),
            oom_kills=read_keyed(self.dir / "memory.events").get("oom_kill", 0),
            pids_current=read_int(self.dir / "pids.current"),
            cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            nr_periods=cpu.get("nr_periods", 0),
            nr_throttled=cpu.get("nr_throttled", 0),
            throttled_ns=cpu.get("throttled_usec", 0) * 1000,
        )

    def pids(self) -> list[int]:
        return read_pids(self.dir / "cgroup.procs")

    def kill_all(self) -> None:
        kill_file = self.dir / "cgroup.kill"
        if kill_file.exists() and self.pids():
            kill_file.write_text("1")  # since Linux 5.14: kills the whole subtree atomically
        kill_until_empty(self.pids)

    def destroy(self) -> None:
        remove_dir(self.dir)

    def confine_devices(self, allow_all: bool) -> bool:
        """v2 has no devices files: Docker's allow-list becomes a program attached to the cgroup."""
        self.device_filter = allow_all or devices.try_attach(self.dir)
        return self.device_filter

    def directories(self) -> dict[str, Path]:
        return {"": self.dir} if self.dir.is_dir() else {}

    def describe(self) -> dict[str, Any]:
        return {"version": "v2", "root": str(self.root), "path": self.path, "device_filter": self.device_filter}
