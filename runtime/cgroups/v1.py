"""cgroup v1: one directory per controller hierarchy (memory, cpu, cpuacct, pids), as mounted by
the hybrid layout (Documentation/admin-guide/cgroup-v1/), plus a directory in the hybrid
layout's controller-less v2 tree, which is where device programs attach."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.cgroups import Resources, Stats, devices
from runtime.cgroups.cgroupfs import kill_until_empty, read_int, read_keyed, read_pids, remove_dir

_UNLIMITED = "-1"


class CgroupV1Manager:
    def __init__(self, root: Path, paths: Mapping[str, str], unified: str | None = None) -> None:
        self.root = root
        self.paths = dict(paths)
        self.unified = unified  # the path in the v2 tree at <root>/unified, when there is one
        self.device_filter = False

    def _dir(self, controller: str) -> Path | None:
        hierarchy = self.root / controller
        if not hierarchy.is_dir():
            return None
        return hierarchy / self.paths[controller].lstrip("/")

    def _unified_dir(self) -> Path | None:
        if self.unified is None or not (self.root / "unified" / "cgroup.controllers").is_file():
            return None
        return self.root / "unified" / self.unified.lstrip("/")

    def _dirs(self) -> list[Path]:
        seen: dict[Path, None] = {}
        for controller in self.paths:
            d = self._dir(controller)
            if d is not None:
                seen.setdefault(d.resolve() if d.exists() else d, None)
        unified = self._unified_dir()
        if unified is not None:
            seen.setdefault(unified, None)
        return list(seen)

    def directories(self) -> dict[str, Path]:
        found = {c: d for c in self.paths if (d := self._dir(c)) is not None and d.is_dir()}
        unified = self._unified_dir()
        if unified is not None and unified.is_dir():
            found["unified"] = unified
        return found

    def create(self) -> None:
        for d in self._dirs():
            d.mkdir(parents=True, exist_ok=True)

    def add(self, pid: int) -> None:
        for d in self._dirs():
            (d / "cgroup.procs").write_text(str(pid))

    def set(self, resources: Resources) -> None:
        self._set_memory(resources.memory)
        self._set_cpu(resources.cpu_quota, resources.cpu_period)
        self._set_pids(resources.pids)

    def confine_devices(self, allow_all: bool) -> bool:
        """Deny every device, then allow Docker's defaults (cgroup-v1/devices.rst), in the devices
        controller and, as a program, in the v2 tree. Without either, CAP_MKNOD would open the
        host's disks. True when at least one of the two is in force."""
        confined = False
        d = self._dir("devices") if devices.v1_controller_enabled() else None
        if d is not None:
            if allow_all:
                (d / "devices.allow").write_text("a")
            else:
                (d / "devices.deny").write_text("a")
                for rule in devices.DEFAULT_RULES:
                    (d / "devices.allow").write_text(rule)
            confined = True
        unified = self._unified_dir()
        if unified is not None and not allow_all:
            confined = devices.try_attach(unified) or confined
        self.device_filter = confined or allow_all
        return self.device_filter

    def _set_memory(self, limit: int | None) -> None:
        d = self._dir("memory")
        if d is None:
            return
        value = _UNLIMITED if limit is None else str(limit)
        memsw = d / "memory.memsw.limit_in_bytes"
        # memory+swap may never be below memory alone: raise memsw first when lifting the limit,
        # lower memory first when imposing one (cgroup-v1/memory.rst, section 2.4).
        if limit is None and memsw.exists():
            memsw.write_text(value)
        (d / "memory.limit_in_bytes").write_text(value)
        if limit is not None and memsw.exists():
            memsw.write_text(value)

    def _set_cpu(self, quota: int | None, period: int) -> None:
        d = self._dir("cpu")
        if d is None:
            return
        (d / "cpu.cfs_period_us").write_text(str(period))
        (d / "cpu.cfs_quota_us").write_text(_UNLIMITED if quota is None else str(quota))

    def _set_pids(self, limit: int | None) -> None:
        d = self._dir("pids")
        if d is None:
            return
        (d / "pids.max").write_text("max" if limit is None or limit <= 0 else str(limit))

    def stats(self) -> Stats:
        mem = self._dir("memory")
        cpu = self._dir("cpu")
        cpuacct = self._dir("cpuacct")
        pids = self._dir("pids")
        cpu_stat = read_keyed(cpu / "cpu.stat") if cpu else {}
        return Stats(
            memory_usage=read_int(mem / "memory.usage_in_bytes") if mem else 0,
            memory_peak=read_int(mem / "memory.max_usage_in_bytes") if mem else 0,
            oom_kills=read_keyed(mem / "memory.oom_control").get("oom_kill", 0) if mem else 0,
            pids_current=read_int(pids / "pids.current") if pids else 0,
            cpu_usage_ns=read_int(cpuacct / "cpuacct.usage") if cpuacct else 0,
            nr_periods=cpu_stat.get("nr_periods", 0),
            nr_throttled=cpu_stat.get("nr_throttled", 0),
            throttled_ns=cpu_stat.get("throttled_time", 0),
        )

    def pids(self) -> list[int]:
        found: set[int] = set()
        for d in self._dirs():
            found.update(read_pids(d / "cgroup.procs"))
        return sorted(found)

    def kill_all(self) -> None:
        kill_until_empty(self.pids)

    def destroy(self) -> None:
        for d in self._dirs():
            remove_dir(d)

    def describe(self) -> dict[str, Any]:
        return {
            "version": "v1",
            "root": str(self.root),
            "paths": dict(self.paths),
            "unified": self.unified,
            "device_filter": self.device_filter,
        }
