"""Docker's security defaults in real containers: the seccomp profile, capabilities and their
flags, --privileged, no_new_privs, the device filter (v1 controller and v2 program) and its
fallback, and the read-only /sys/fs/cgroup showing the container's own cgroup."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from runtime.security import CAPABILITIES, all_capabilities
from tests import imagebuild
from tests.conftest import require, require_tool
from tests.runtime.conftest import IMAGE, Dockyard
from tests.runtime.images import busybox_layer, seed

pytestmark = pytest.mark.privileged


def _status(dy: Dockyard, *flags: str, image: str = IMAGE) -> dict[str, str]:
    out = dy.run(*flags, image, "cat", "/proc/self/status", check=True).stdout
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def _mask(names: tuple[str, ...] | list[str]) -> str:
    return f"{sum(1 << CAPABILITIES[n] for n in names):016x}"


def test_default_seccomp_profile(dy: Dockyard) -> None:
    status = _status(dy)
    assert status["Seccomp"] == "2"
    r = dy.run(IMAGE, "sh", "-c", "unshare -U true; echo $?; mkdir /mnt; mount -t tmpfs none /mnt; echo $?")
    assert r.stdout.split() == ["1", "1"]
    assert "unshare(0x10000000): Operation not permitted" in r.stderr
    assert "mount: permission denied" in r.stderr  # busybox's words for EPERM
    # Ordinary work is untouched: processes, pipes, sockets, files.
    script = "echo a | cat; (sleep 0 &); wait; nc -l -p 1 -s 127.0.0.1 & sleep 0.1; kill $!; echo ok"
    r = dy.run(IMAGE, "sh", "-c", script)
    assert r.stdout.splitlines() == ["a", "ok"], r.stderr


def test_seccomp_follows_capabilities(dy: Dockyard) -> None:
    # CAP_SYS_ADMIN opens mount and unshare in the filter as well as in the kernel, as in Docker.
    r = dy.run("--cap-add", "SYS_ADMIN", IMAGE, "sh", "-c", "mkdir /mnt; mount -t tmpfs none /mnt && echo mounted")
    assert r.stdout.strip() == "mounted", r.stderr


def test_seccomp_unconfined(dy: Dockyard) -> None:
    assert _status(dy, "--security-opt", "seccomp=unconfined")["Seccomp"] == "0"
    r = dy.run("--security-opt", "seccomp=unconfined", IMAGE, "sh", "-c", "unshare -U true; echo $?")
    assert r.stdout.strip() == "0", r.stderr


def test_seccomp_profile_from_a_file(dy: Dockyard, tmp_path: Path) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        ],
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    script = "mkdir /tmp/d; echo $?; touch /tmp/f; chmod 600 /tmp/f; echo $?; grep Seccomp: /proc/self/status"
    r = dy.run("--security-opt", f"seccomp={path}", IMAGE, "sh", "-c", script)
    assert r.stdout.split() == ["1", "0", "Seccomp:", "2"], r.stderr
    assert "Permission denied" in r.stderr
    # The chmod rule applies only to a container holding CAP_SYS_ADMIN.
    r = dy.run("--security-opt", f"seccomp={path}", "--cap-add", "SYS_ADMIN", IMAGE, "sh", "-c", script)
    assert r.stdout.split()[:2] == ["1", "1"], r.stderr


def test_bad_seccomp_profiles_are_refused(dy: Dockyard, tmp_path: Path) -> None:
    cases = {
        "not json": "Decoding seccomp profile failed",
        json.dumps({"defaultAction": "SCMP_ACT_NOPE"}): "unknown action",
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            }
        ): "at most 6 arguments",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"p{i}.json"
        path.write_text(text)
        r = dy.run("--security-opt", f"seccomp={path}", IMAGE, "true")
        assert r.returncode == 125 and message in r.stderr, r.stderr
    r = dy.run("--security-opt", f"seccomp={tmp_path}/missing.json", IMAGE, "true")
    assert r.returncode == 125 and "opening seccomp profile" in r.stderr
    r = dy.run("--security-opt", "apparmor=x", IMAGE, "true")
    assert r.returncode == 125 and "invalid --security-opt" in r.stderr


def test_exec_gets_the_same_confinement(dy: Dockyard) -> None:
    cid = dy("run", "-d", "--cap-drop", "ALL", IMAGE, "sleep", "60", check=True).stdout.strip()
    out = dy("exec", cid, "grep", "-E", "^(Seccomp|CapEff):", "/proc/self/status", check=True).stdout
    assert out.split() == ["CapEff:", "0000000000000000", "Seccomp:", "2"]
    dy("rm", "-f", cid)


# --- capabilities ---------------------------------------------------------------------------------


def test_cap_add_and_cap_drop(dy: Dockyard) -> None:
    default = [n for n, bit in CAPABILITIES.items() if 0xA80425FB & (1 << bit)]  # Docker's 14
    assert _status(dy)["CapEff"] == "00000000a80425fb"
    assert _status(dy, "--cap-drop", "ALL")["CapEff"] == "0000000000000000"
    assert _status(dy, "--cap-drop", "all", "--cap-add", "net_raw")["CapEff"] == _mask(["CAP_NET_RAW"])
    with_admin = _status(dy, "--cap-add", "NET_ADMIN", "--cap-drop", "CAP_CHOWN")
    assert with_admin["CapEff"] == _mask([*(c for c in default if c != "CAP_CHOWN"), "CAP_NET_ADMIN"])
    assert with_admin["CapBnd"] == with_admin["CapEff"]
    everything = list(all_capabilities())
    assert _status(dy, "--cap-add", "ALL", "--cap-drop", "SYS_ADMIN")["CapEff"] == _mask(
        [c for c in everything if c != "CAP_SYS_ADMIN"]
    )
    # What the capability guards: CAP_CHOWN dropped, chown fails.
    r = dy.run("--cap-drop", "CHOWN", IMAGE, "sh", "-c", "touch /tmp/f; chown 1 /tmp/f; echo $?")
    assert r.stdout.strip() == "1" and "Operation not permitted" in r.stderr
    r = dy.run("--cap-add", "BOGUS", IMAGE, "true")
    assert r.returncode == 125 and 'unknown capability: "CAP_BOGUS"' in r.stderr


def test_privileged(dy: Dockyard, tmp_path: Path) -> None:
    status = _status(dy, "--privileged")
    assert status["CapEff"] == _mask(list(all_capabilities()))
    assert status["Seccomp"] == "0"
    r = dy.run(
        "--privileged",
        IMAGE,
        "sh",
        "-c",
        "grep -E ' /sys (sysfs|cgroup)' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; "
        "mknod /tmp/kmsg c 1 11 && true < /tmp/kmsg && echo opened; ls /dev/kmsg; head -c 1 /proc/timer_list | wc -c",
    )
    lines = r.stdout.split()
    assert lines[0] == "rw", r.stdout  # /sys is writable
    assert "opened" in lines, r.stderr  # every device is allowed
    assert "/dev/kmsg" in lines  # the host's device nodes are there
    assert lines[-1] == "1"  # no masked paths
    r = dy.run(IMAGE, "sh", "-c", "mknod /tmp/kmsg c 1 11 && true < /tmp/kmsg && echo opened")
    assert "opened" not in r.stdout and "Operation not permitted" in r.stderr


def test_no_new_privileges(dy: Dockyard, tmp_path: Path) -> None:
    assert _status(dy)["NoNewPrivs"] == "0"
    assert _status(dy, "--security-opt", "no-new-privileges")["NoNewPrivs"] == "1"
    assert _status(dy, "--security-opt", "no-new-privileges=true")["Seccomp"] == "2"
    assert _status(dy, "--security-opt", "no-new-privileges=false")["NoNewPrivs"] == "0"


def test_setuid_binaries_follow_no_new_privileges(dy: Dockyard, tmp_path: Path) -> None:
    gcc = require_tool("gcc")
    source = tmp_path / "euid.c"
    source.write_text(
        '#include <stdio.h>\n#include <unistd.h>\nint main(void){printf("%d\\n",(int)geteuid());return 0;}\n'
    )
    binary = tmp_path / "euid"
    built = subprocess.run([gcc, "-static", "-O2", "-o", str(binary), str(source)], capture_output=True, text=True)
    require(built.returncode == 0, f"gcc -static failed (libc6-dev is not installed?): {built.stderr.strip()}")
    image = "test/setuid:latest"
    seed(dy.root, image, [busybox_layer([imagebuild.file("bin/euid", binary.read_bytes(), mode=0o4755)])])
    assert dy.run("-u", "nobody", image, "euid").stdout.strip() == "0"  # setuid root works, as in Docker
    nnp = dy.run("-u", "nobody", "--security-opt", "no-new-privileges", image, "euid")
    assert nnp.stdout.strip() == "65534"


# --- devices ---------------------------------------------------------------------------------------


def _state(dy: Dockyard, cid: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((dy.root / "containers" / cid / "state.json").read_text())
    return data


def _wait_running(dy: Dockyard, cid: str) -> dict[str, object]:
    for _ in range(500):
        state = _state(dy, cid)
        if state["status"] == "running":
            return state
        time.sleep(0.01)
    raise AssertionError("container did not start")


def test_device_program_is_attached_to_the_v2_cgroup(dy: Dockyard) -> None:
    bpftool = require_tool("bpftool")
    cid = dy("run", "-d", IMAGE, "sleep", "60", check=True).stdout.strip()
    cgroup = _wait_running(dy, cid)["cgroup"]
    assert isinstance(cgroup, dict)
    if cgroup["version"] == "v2":
        directory = Path(str(cgroup["root"])) / str(cgroup["path"]).lstrip("/")
    else:
        if cgroup.get("unified") is None:
            pytest.skip("no cgroup v2 tree on this host")
        directory = Path(str(cgroup["root"])) / "unified" / str(cgroup["unified"]).lstrip("/")
    shown = subprocess.run([bpftool, "cgroup", "show", str(directory)], capture_output=True, text=True, check=True)
    assert "cgroup_device" in shown.stdout and "dockyard_dev" in shown.stdout
    assert cgroup["device_filter"] is True
    dy("rm", "-f", cid)


def test_without_any_device_filter_mknod_goes_and_the_root_is_nodev(
    dy: Dockyard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_NO_DEVICE_CGROUP", "1")
    r = dy.run(IMAGE, "sh", "-c", "grep CapBnd /proc/self/status; grep ' / ' /proc/mounts; mknod /tmp/d b 8 0; echo $?")
    assert "dropping CAP_MKNOD and mounting the root nodev" in r.stderr
    lines = r.stdout.splitlines()
    assert int(lines[0].split()[1], 16) & (1 << CAPABILITIES["CAP_MKNOD"]) == 0
    assert "nodev" in lines[1].split()[3].split(",")
    assert lines[-1] == "1" and "Operation not permitted" in r.stderr


def test_the_device_program_alone_keeps_host_disks_shut(dy: Dockyard, monkeypatch: pytest.MonkeyPatch) -> None:
    # The v1 devices controller left alone (as on a v2-only host): only the program guards.
    if not (
        Path("/sys/fs/cgroup/unified/cgroup.controllers").is_file()
        or Path("/sys/fs/cgroup/cgroup.controllers").is_file()
    ):
        pytest.skip("no cgroup v2 tree on this host")
    monkeypatch.setenv("DOCKYARD_NO_DEVICE_CGROUP", "v1")
    script = (
        "cat /sys/fs/cgroup/devices/devices.list 2>/dev/null || echo no-v1; grep CapBnd /proc/self/status; "
        "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda; mknod /tmp/kmsg c 1 11 && true < /tmp/kmsg; "
        "echo > /dev/null && echo null-ok"
    )
    r = dy.run(IMAGE, "sh", "-c", script)
    lines = r.stdout.splitlines()
    assert lines[0] in ("a *:* rwm", "no-v1")  # the v1 controller allows everything
    assert int(lines[1].split()[1], 16) & (1 << CAPABILITIES["CAP_MKNOD"])  # mknod itself is allowed
    assert lines[-1] == "null-ok"
    assert "head: /tmp/sda: Operation not permitted" in r.stderr
    assert r.stderr.count("Operation not permitted") == 2, r.stderr
    assert "dropping CAP_MKNOD" not in r.stderr
    # With --read-only too, the fallback's nodev root stays nodev.
    monkeypatch.setenv("DOCKYARD_NO_DEVICE_CGROUP", "1")
    r = dy.run("--read-only", IMAGE, "sh", "-c", "grep ' / ' /proc/mounts")
    assert {"ro", "nodev"} <= set(r.stdout.split()[3].split(",")), r.stdout


# --- /sys/fs/cgroup --------------------------------------------------------------------------------


def test_sys_fs_cgroup_shows_the_containers_own_cgroup_read_only(dy: Dockyard) -> None:
    script = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
        "echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes; mkdir /sys/fs/cgroup/x; "
        "wc -l < /sys/fs/cgroup/memory/cgroup.procs"
    )
    if not Path("/sys/fs/cgroup/memory").is_dir():
        script = (
            "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; echo 1 > /sys/fs/cgroup/memory.max; "
            "mkdir /sys/fs/cgroup/x; wc -l < /sys/fs/cgroup/cgroup.procs"
        )
    r = dy.run("-m", "64m", "--pids-limit", "50", IMAGE, "sh", "-c", script)
    lines = r.stdout.split()
    assert lines[:2] == [str(64 * 1024 * 1024), "50"], r.stderr
    assert r.stderr.count("Read-only file system") == 2, r.stderr
    assert int(lines[2]) <= 3  # only the container's processes: sh and wc (not the host's)
