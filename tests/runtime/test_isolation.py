"""Namespaces, filesystem and privileges of a running container (issue 5, point 3), and exit codes
(point 1). Each test runs the real CLI as root."""

from __future__ import annotations

import os
import re
import socket

import pytest

from tests.runtime.conftest import IMAGE, Dockyard, require_tini

pytestmark = pytest.mark.privileged


def test_command_is_pid_1_and_host_processes_are_invisible(dy: Dockyard) -> None:
    r = dy.run(IMAGE, "sh", "-c", "echo $$; ls /proc | grep -E '^[0-9]+$' | wc -l")
    assert r.returncode == 0, r.stderr
    pid, count = r.stdout.split()
    assert pid == "1"
    assert int(count) <= 5  # sh and the pipeline (ls, grep, wc); the host has many more
    assert str(os.getpid()) not in r.stdout


def test_hostname_defaults_to_short_id_and_follows_flag(dy: Dockyard) -> None:
    r = dy.run("--hostname", "box1", IMAGE, "sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME")
    assert r.stdout.split() == ["box1", "box1", "box1"]
    r = dy("run", "--name", "named", IMAGE, "hostname", check=True)
    cid = dy("inspect", "named").stdout
    assert re.search(r'"Id": "' + r.stdout.strip(), cid)


@pytest.mark.parametrize(
    ("flags", "script", "code"),
    [
        ((), "exit 0", 0),
        ((), "exit 3", 3),
        # PID 1 cannot be killed from inside its own namespace, not even by SIGKILL; under --init the
        # command is PID 2 and the init reports its death by signal as 128 + 9.
        ((), "kill -KILL $$; exit 4", 4),
        (("--init",), "kill -KILL $$", 137),
    ],
)
def test_exit_codes(dy: Dockyard, flags: tuple[str, ...], script: str, code: int) -> None:
    if "--init" in flags:
        require_tini()
    assert dy.run(*flags, IMAGE, "sh", "-c", script).returncode == code


def test_sigterm_with_init_gives_143(dy: Dockyard) -> None:
    require_tini()
    # Without --init the shell is PID 1 and the kernel drops SIGTERM it has no handler for,
    # exactly as under Docker (pid_namespaces(7)).
    assert dy.run(IMAGE, "sh", "-c", "kill -TERM $$; echo survived").stdout.strip() == "survived"
    r = dy.run("--init", IMAGE, "sh", "-c", "kill -TERM $$; echo survived")
    assert r.returncode == 143
    assert "survived" not in r.stdout


def test_init_reaps_zombies(dy: Dockyard) -> None:
    require_tini()
    script = "sh -c 'sleep 0.1 & exec true' ; sleep 0.5; ps -o stat,comm | grep -c '^Z' || true"
    r = dy.run("--init", IMAGE, "sh", "-c", script)
    assert r.stdout.strip() == "0", r.stdout


def test_command_not_found_is_127(dy: Dockyard) -> None:
    r = dy.run(IMAGE, "no-such-command")
    assert r.returncode == 127
    assert "executable file not found" in r.stderr


def test_proc_sys_and_masks(dy: Dockyard) -> None:
    script = (
        "echo x > /proc/sys/kernel/hostname 2>/dev/null && echo procsys-writable;"
        "touch /sys/x 2>/dev/null && echo sys-writable;"
        "cat /proc/timer_list | wc -c; cat /proc/keys | wc -c; ls /sys/firmware | wc -l;"
        "grep Cap /proc/self/status; grep NoNewPrivs /proc/self/status"
    )
    r = dy.run(IMAGE, "sh", "-c", script)
    assert "writable" not in r.stdout
    lines = r.stdout.split("\n")
    assert lines[0:3] == ["0", "0", "0"]
    # Docker's 14 default capabilities, nothing inherited or ambient.
    assert "CapBnd:\t00000000a80425fb" in r.stdout
    assert "CapEff:\t00000000a80425fb" in r.stdout
    assert "CapInh:\t0000000000000000" in r.stdout
    # Docker leaves no_new_privs off unless --security-opt no-new-privileges asks for it.
    assert "NoNewPrivs:\t0" in r.stdout
    # Nothing ignored is inherited from the runtime (the command runs as PID 1 here: busybox sh
    # would ignore SIGQUIT itself).
    assert dy.run(IMAGE, "grep", "SigIgn", "/proc/self/status").stdout == "SigIgn:\t0000000000000000\n"


def test_dev_is_minimal(dy: Dockyard) -> None:
    r = dy.run(
        IMAGE, "sh", "-c", "ls /dev | sort | tr '\\n' ' '; echo; echo hi > /dev/null; head -c 4 /dev/urandom | wc -c"
    )
    names = set(r.stdout.split("\n")[0].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"} <= names
    assert not any(n.startswith(("sd", "vd", "nvme", "mem", "kmsg")) for n in names)
    assert r.stdout.split("\n")[1] == "4"


def test_network_namespaces(dy: Dockyard) -> None:
    ifaces = dy.run(IMAGE, "sh", "-c", "ls /sys/class/net").stdout.split()
    assert ifaces == ["lo"]
    assert "UP" in dy.run("--network", "none", IMAGE, "ip", "link", "show", "lo").stdout
    host = sorted(os.listdir("/sys/class/net"))
    assert sorted(dy.run("--network", "host", IMAGE, "ls", "/sys/class/net").stdout.split()) == host
    assert dy.run("--network", "host", IMAGE, "hostname").stdout.strip() == socket.gethostname()


def test_user_and_workdir(dy: Dockyard) -> None:
    r = dy.run(
        "-u", "nobody", "-w", "/tmp/work", IMAGE, "sh", "-c", "id; pwd; echo $HOME; grep CapEff /proc/self/status"
    )
    lines = r.stdout.splitlines()
    assert lines[0].startswith("uid=65534(nobody) gid=65534(nogroup)")
    assert lines[1:3] == ["/tmp/work", "/nonexistent"]
    assert lines[3] == "CapEff:\t0000000000000000"
    assert dy.run("-u", "1234:5678", IMAGE, "id").stdout.startswith("uid=1234 gid=5678")
    r = dy.run("-u", "nosuchuser", IMAGE, "id")
    assert r.returncode == 125
    assert "unable to find user nosuchuser" in r.stderr


def test_environment(dy: Dockyard, tmp_path: os.PathLike[str]) -> None:
    env_file = os.path.join(tmp_path, "env")
    with open(env_file, "w") as f:
        f.write("# comment\nFROM_FILE=1\nOVER=file\n")
    r = dy.run("--env-file", env_file, "-e", "OVER=flag", "-e", "A=b c", "--hostname", "h", IMAGE, "env")
    env = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert env["FROM_FILE"] == "1"
    assert env["OVER"] == "flag"
    assert env["A"] == "b c"
    assert env["HOSTNAME"] == "h"
    assert env["HOME"] == "/root"
    assert env["PATH"].startswith("/usr/local/sbin")


def test_device_nodes_beyond_the_defaults_are_unusable(dy: Dockyard) -> None:
    # CAP_MKNOD is in Docker's default set; the devices cgroup is what keeps the host's disks shut.
    r = dy.run(
        IMAGE, "sh", "-c", "mknod /tmp/disk b 8 0 && head -c 1 /tmp/disk; mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem"
    )
    assert r.stderr.count("Operation not permitted") == 2, r.stderr
