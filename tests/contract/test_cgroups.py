"""One suite for every CgroupManager, run against fake cgroupfs trees in a temporary directory
(plain files stand in for the kernel's), plus detection of v1, v2 and the hybrid layout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.cgroups import CgroupManager, Resources, detect, own_cgroups
from runtime.cgroups.factory import new_manager, open_manager

V1_FILES = {
    "memory": {
        "memory.limit_in_bytes": "9223372036854771712",
        "memory.memsw.limit_in_bytes": "9223372036854771712",
        "memory.usage_in_bytes": "4096",
        "memory.max_usage_in_bytes": "8192",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    },
    "cpu": {
        "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "-1",
        "cpu.stat": "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n",
    },
    "cpuacct": {"cpuacct.usage": "123456"},
    "pids": {"pids.max": "max", "pids.current": "3"},
    "devices": {"devices.allow": "", "devices.deny": ""},
}
V2_FILES = {
    "memory.max": "max",
    "memory.swap.max": "max",
    "memory.current": "4096",
    "memory.peak": "8192",
    "memory.events": "low 0\nhigh 0\nmax 1\noom 1\noom_kill 2\n",
    "cpu.max": "max 100000",
    "cpu.stat": "usage_usec 123\nnr_periods 10\nnr_throttled 4\nthrottled_usec 5\n",
    "pids.max": "max",
    "pids.current": "3",
}
PROC_CGROUP_V1 = "4:memory:/session/x\n3:cpu,cpuacct:/\n2:pids:/\n0::/\n"
PROC_CGROUP_V2 = "0::/user.slice/session-1.scope\n"


def _fake_v1(root: Path) -> None:
    for controller in V1_FILES:
        (root / controller).mkdir(parents=True)
    (root / "unified").mkdir()
    (root / "unified" / "cgroup.controllers").write_text("\n")  # the hybrid layout: v2 without controllers


def _fake_v2(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")


def _populate(manager: CgroupManager, root: Path) -> list[Path]:
    """What the kernel does on mkdir: fill the new cgroup with its interface files."""
    description = manager.describe()
    if description["version"] == "v2":
        d = root / description["path"].lstrip("/")
        for name, text in V2_FILES.items():
            (d / name).write_text(text)
        (d / "cgroup.procs").write_text("")
        return [d]
    dirs = []
    for controller, path in description["paths"].items():
        d = root / controller / path.lstrip("/")
        for name, text in V1_FILES[controller].items():
            (d / name).write_text(text)
        (d / "cgroup.procs").write_text("")
        dirs.append(d)
    return dirs


@pytest.fixture(params=["v1", "v2"])
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[CgroupManager, Path, Callable[[], None]]]:
    root = tmp_path / "cgroup"
    if request.param == "v1":
        _fake_v1(root)
        manager = new_manager("dockyard/c1", root, PROC_CGROUP_V1)
    else:
        _fake_v2(root)
        manager = new_manager("dockyard/c1", root, PROC_CGROUP_V2)
    manager.create()
    dirs = _populate(manager, root)

    def empty() -> None:
        # rmdir needs an empty directory; the kernel's interface files vanish by themselves.
        for d in dirs:
            for f in d.iterdir():
                f.unlink()

    yield manager, root, empty


def test_detect(tmp_path: Path) -> None:
    _fake_v1(tmp_path / "hybrid")
    assert detect(tmp_path / "hybrid") == ("v1", tmp_path / "hybrid")
    _fake_v2(tmp_path / "pure")
    assert detect(tmp_path / "pure") == ("v2", tmp_path / "pure")
    _fake_v1(tmp_path / "hybrid2")
    (tmp_path / "hybrid2" / "unified" / "cgroup.controllers").write_text("cpu memory pids\n")
    assert detect(tmp_path / "hybrid2") == ("v2", tmp_path / "hybrid2" / "unified")


def test_nested_under_own_cgroup(tmp_path: Path) -> None:
    _fake_v1(tmp_path / "v1")
    manager = new_manager("dockyard/c1", tmp_path / "v1", PROC_CGROUP_V1)
    assert manager.describe()["paths"]["memory"] == "/session/x/dockyard/c1"
    assert manager.describe()["paths"]["cpu"] == "/dockyard/c1"
    assert own_cgroups(PROC_CGROUP_V1)["cpuacct"] == "/"


def test_create_makes_directories(fake: tuple[CgroupManager, Path, Callable[[], None]]) -> None:
    manager, root, _ = fake
    description = manager.describe()
    if description["version"] == "v2":
        assert (root / "user.slice/session-1.scope/dockyard/c1").is_dir()
        # Controllers are delegated down to the new cgroup's parent.
        assert (root / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    else:
        assert (root / "memory/session/x/dockyard/c1").is_dir()
        assert (root / "pids/dockyard/c1").is_dir()


def _read(manager: CgroupManager, root: Path, v1: tuple[str, str], v2: str) -> str:
    description = manager.describe()
    if description["version"] == "v2":
        return (root / str(description["path"]).lstrip("/") / v2).read_text()
    controller, name = v1
    return (root / controller / str(description["paths"][controller]).lstrip("/") / name).read_text()


def test_set_limits(fake: tuple[CgroupManager, Path, Callable[[], None]]) -> None:
    manager, root, _ = fake
    manager.set(Resources.from_cpus(0.5, memory=32 * 1024 * 1024, pids=20))
    assert _read(manager, root, ("memory", "memory.limit_in_bytes"), "memory.max") == str(32 * 1024 * 1024)
    assert _read(manager, root, ("memory", "memory.memsw.limit_in_bytes"), "memory.swap.max") in (
        str(32 * 1024 * 1024),
        "0",
    )
    if manager.describe()["version"] == "v2":
        assert _read(manager, root, ("cpu", ""), "cpu.max") == "50000 100000"
    else:
        assert _read(manager, root, ("cpu", "cpu.cfs_quota_us"), "") == "50000"
        assert _read(manager, root, ("cpu", "cpu.cfs_period_us"), "") == "100000"
    assert _read(manager, root, ("pids", "pids.max"), "pids.max") == "20"


def test_v1_denies_devices_but_docker_defaults(tmp_path: Path) -> None:
    _fake_v1(tmp_path)
    manager = new_manager("dockyard/c1", tmp_path, PROC_CGROUP_V1)
    manager.create()
    _populate(manager, tmp_path)
    manager.set(Resources())
    d = tmp_path / "devices/dockyard/c1"
    assert (d / "devices.deny").read_text() == "a"
    assert (d / "devices.allow").read_text() == "c 10:200 rwm"  # the last rule; the kernel appends each write


def test_unset_limits_mean_unlimited(fake: tuple[CgroupManager, Path, Callable[[], None]]) -> None:
    manager, root, _ = fake
    manager.set(Resources())
    assert _read(manager, root, ("memory", "memory.limit_in_bytes"), "memory.max") in ("-1", "max")
    assert _read(manager, root, ("pids", "pids.max"), "pids.max") == "max"


def test_stats(fake: tuple[CgroupManager, Path, Callable[[], None]]) -> None:
    manager, _, _ = fake
    stats = manager.stats()
    assert (stats.memory_usage, stats.memory_peak, stats.oom_kills) == (4096, 8192, 2)
    assert (stats.nr_periods, stats.nr_throttled, stats.pids_current) == (10, 4, 3)
    assert stats.cpu_usage_ns in (123456, 123000)


def test_add_writes_cgroup_procs(fake: tuple[CgroupManager, Path, Callable[[], None]]) -> None:
    manager, _, _ = fake
    manager.add(4242)
    assert manager.pids() == [4242]


def test_kill_all_on_empty_cgroup_and_destroy(fake: tuple[CgroupManager, Path, Callable[[], None]]) -> None:
    manager, root, empty = fake
    manager.kill_all()
    empty()
    manager.destroy()
    description = manager.describe()
    leaf = (
        root / description["path"].lstrip("/")
        if description["version"] == "v2"
        else (root / "memory" / description["paths"]["memory"].lstrip("/"))
    )
    assert not leaf.exists()
    manager.destroy()  # idempotent


def test_describe_round_trips(fake: tuple[CgroupManager, Path, Callable[[], None]]) -> None:
    manager, _, _ = fake
    assert open_manager(manager.describe()).describe() == manager.describe()
