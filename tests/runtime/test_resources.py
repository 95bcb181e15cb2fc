"""cgroup limits (issue 5, point 4): OOM kill under --memory, fork refused past --pids-limit, CFS
throttling under --cpus, and the cgroup gone with the container."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from runtime.cgroups.factory import open_manager
from tests.runtime.conftest import IMAGE, Dockyard

pytestmark = pytest.mark.privileged


def _cgroup(dy: Dockyard, name: str) -> dict[str, object]:
    info = json.loads(dy("inspect", name, check=True).stdout)[0]
    cgroup: dict[str, object] = info["Cgroup"]
    return cgroup


def test_memory_limit_oom_kills(dy: Dockyard) -> None:
    # tail keeps the whole "line" of /dev/zero in memory, so it grows until the limit.
    r = dy("run", "--name", "oom", "--memory", "32m", IMAGE, "sh", "-c", "exec tail /dev/zero", timeout=120)
    assert r.returncode == 137
    state = json.loads(dy("inspect", "oom").stdout)[0]["State"]
    assert state["OOMKilled"] is True
    assert state["ExitCode"] == 137


def test_pids_limit_stops_fork_bomb(dy: Dockyard) -> None:
    # The bomb runs in the background; PID 1 execs into sleep, so it needs no fork of its own.
    bomb = "(f() { f | f & }; f) & exec sleep 1000"
    cid = dy("run", "-d", "--pids-limit", "20", IMAGE, "sh", "-c", bomb, check=True).stdout.strip()
    manager = open_manager(_cgroup(dy, cid))
    deadline = time.monotonic() + 20
    while "can't fork" not in dy("logs", cid).stderr:
        assert time.monotonic() < deadline, "the fork bomb never hit the limit"
        time.sleep(0.2)
    assert manager.stats().pids_current <= 20
    assert json.loads(dy("inspect", cid).stdout)[0]["State"]["Running"] is True
    # Removing it kills every process of the bomb, however fast it forks.
    dy("rm", "-f", cid, check=True)
    assert manager.pids() == []


def test_cpu_quota_throttles(dy: Dockyard) -> None:
    cid = dy(
        "run", "-d", "--name", "busy", "--cpus", "0.2", IMAGE, "sh", "-c", "while :; do :; done", check=True
    ).stdout.strip()
    try:
        cgroup = _cgroup(dy, cid)
        manager = open_manager(cgroup)
        # Poll rather than sleep a fixed time: on a loaded machine the loop may get little CPU at first.
        deadline = time.monotonic() + 15
        while (first := manager.stats()).nr_throttled == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        stats = manager.stats()
        assert stats.nr_throttled > first.nr_throttled > 0
        # At most 20 ms of CPU time per 100 ms period (plus a little slack for the period boundaries).
        periods = stats.nr_periods - first.nr_periods
        used = stats.cpu_usage_ns - first.cpu_usage_ns
        assert periods > 0
        assert used <= periods * 20_000_000 * 1.25 + 10_000_000
    finally:
        dy("rm", "-f", cid, check=True)
    for path in _cgroup_dirs(cgroup):
        assert not path.exists(), f"{path} left behind"


def _cgroup_dirs(cgroup: dict[str, object]) -> list[Path]:
    root = Path(str(cgroup["root"]))
    if cgroup["version"] == "v2":
        return [root / str(cgroup["path"]).lstrip("/")]
    paths = cgroup["paths"]
    assert isinstance(paths, dict)
    return [root / c / p.lstrip("/") for c, p in paths.items() if (root / c).is_dir()]


def test_cgroup_removed_with_foreground_container(dy: Dockyard) -> None:
    dy("run", "--name", "short", "--memory", "64m", "--pids-limit", "50", IMAGE, "true", check=True)
    cgroup = _cgroup(dy, "short")
    assert cgroup
    for path in _cgroup_dirs(cgroup):
        assert not path.exists()


def test_v2_manager_on_the_real_unified_hierarchy() -> None:
    """The v2 manager's process handling (create, add, pids, kill_all, destroy) on the kernel's own
    cgroup2 tree, even where it has no controllers to limit with (the hybrid layout)."""
    import secrets
    import subprocess

    from runtime.cgroups import own_cgroups
    from runtime.cgroups.v2 import CgroupV2Manager
    from tests.conftest import require, require_root

    require_root()
    root = next(
        (
            p
            for p in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
            if (p / "cgroup.procs").exists() and (p / "cgroup.controllers").exists()
        ),
        None,
    )
    require(root is not None, "no cgroup2 hierarchy mounted")
    assert root is not None
    own = own_cgroups(Path("/proc/self/cgroup").read_text()).get("", "/")
    manager = CgroupV2Manager(root, f"{own.rstrip('/')}/dockyard-test-{secrets.token_hex(4)}")
    manager.create()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        manager.add(sleeper.pid)
        assert manager.pids() == [sleeper.pid]
        manager.kill_all()
        assert sleeper.wait(10) == -9
        assert manager.pids() == []
    finally:
        sleeper.kill()
        sleeper.wait()
        manager.destroy()
    assert not manager.dir.exists()
