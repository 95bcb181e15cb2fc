"""Opening a container's cgroup: `new_manager()` for a new container, `open_manager()` for one another
process described. The only module that knows both implementations."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.cgroups import CONTROLLERS, DEFAULT_ROOT, CgroupManager, detect, own_cgroups
from runtime.cgroups.v1 import CgroupV1Manager
from runtime.cgroups.v2 import CgroupV2Manager


def new_manager(name: str, root: Path = DEFAULT_ROOT, proc_cgroup: str | None = None) -> CgroupManager:
    """The manager for cgroup `name`, nested under the calling process's own cgroup in each
    hierarchy so that limits placed on the caller also bind its containers."""
    if proc_cgroup is None:
        with open("/proc/self/cgroup") as f:
            proc_cgroup = f.read()
    own = own_cgroups(proc_cgroup)
    version, base = detect(root)
    if version == "v2":
        return CgroupV2Manager(base, _join(own.get("", "/"), name))
    paths = {c: _join(own.get(c, "/"), name) for c in (*CONTROLLERS, "cpuacct", "devices")}
    return CgroupV1Manager(base, paths)


def open_manager(description: Mapping[str, Any]) -> CgroupManager:
    if description["version"] == "v2":
        return CgroupV2Manager(Path(description["root"]), description["path"])
    return CgroupV1Manager(Path(description["root"]), dict(description["paths"]))


def _join(parent: str, name: str) -> str:
    return os.path.join(parent, name).rstrip("/") or "/"
