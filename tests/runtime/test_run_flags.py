"""Run flags and behaviours matched to Docker (issue 11): --tmpfs, --ulimit, --add-host, --dns*,
--init as tini, the host network's /etc files, volume errors and anonymous volumes, prune prompts."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import IMAGE, Dockyard, require_tini
from tests.runtime.images import busybox_layer, seed
from tests.runtime.test_lifecycle import _on_pty, _read_until

pytestmark = pytest.mark.privileged


def test_tmpfs_mounts_with_docker_defaults(dy: Dockyard) -> None:
    r = dy.run(
        "--read-only", "--tmpfs", "/t:size=1m,mode=700", "--tmpfs", "/run:exec", IMAGE,
        "sh", "-c", "grep ' /t ' /proc/mounts; grep ' /run ' /proc/mounts; stat -c %a /t; echo ok > /t/f && cat /t/f",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "tmpfs /t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=700 0 0"
    assert lines[1].startswith("tmpfs /run tmpfs rw,nosuid,nodev,relatime")
    assert lines[2:] == ["700", "ok"]
    bad = dy.run("--tmpfs", "relative", IMAGE, "true")
    assert bad.returncode == 125 and "mount path must be absolute" in bad.stderr


def test_ulimits(dy: Dockyard) -> None:
    r = dy.run("--ulimit", "nofile=100:200", "--ulimit", "core=-1", "-u", "nobody", IMAGE,
               "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c")  # fmt: skip
    assert r.stdout.split() == ["100", "200", "unlimited"], r.stderr
    dy("run", "-d", "--name", "limited", "--ulimit", "nproc=77", IMAGE, "sleep", "100", check=True)
    assert dy("exec", "limited", "sh", "-c", "ulimit -u").stdout.strip() == "77"
    for flag, message in [
        ("bogus=1", 'invalid argument "bogus=1" for "--ulimit" flag: invalid ulimit type: bogus'),
        ("nofile=300:200", "ulimit soft limit must be less than or equal to hard limit: 300 > 200"),
        ("nofile", "invalid ulimit argument: nofile"),
    ]:
        bad = dy.run("--ulimit", flag, IMAGE, "true")
        assert bad.returncode == 125 and message in bad.stderr and "Traceback" not in bad.stderr


def test_add_host_and_dns(dy: Dockyard) -> None:
    r = dy.run("--add-host", "foo:1.2.3.4", "--add-host", "bar=::1", "-h", "box", IMAGE, "cat", "/etc/hosts")
    lines = r.stdout.splitlines()
    assert lines[:2] == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    assert lines[-3:] == ["1.2.3.4\tfoo", "::1\tbar", "127.0.1.1\tbox"]
    resolv = dy.run(
        "--dns", "9.9.9.9", "--dns-search", "example.com", "--dns-option", "ndots:2", IMAGE, "cat", "/etc/resolv.conf"
    )
    assert resolv.stdout == "search example.com\nnameserver 9.9.9.9\noptions ndots:2\n"
    bad = dy.run("--add-host", "foo", IMAGE, "true")
    assert bad.returncode == 125
    assert 'invalid argument "foo" for "--add-host" flag: bad format for add-host: "foo"' in bad.stderr


def test_host_network_sees_the_host_files_and_private_drops_loopback_resolvers(dy: Dockyard) -> None:
    host = dy.run("--network", "host", IMAGE, "sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf")
    assert host.stdout == Path("/etc/hosts").read_text() + "---\n" + Path("/etc/resolv.conf").read_text()
    private = dy.run(IMAGE, "cat", "/etc/resolv.conf").stdout
    assert "nameserver" in private
    assert not [line for line in private.splitlines() if line.startswith(("nameserver 127.", "nameserver ::1"))]


def test_init_is_tini(dy: Dockyard) -> None:
    require_tini()
    r = dy.run("--init", "-e", "SECRET=s3cret", IMAGE, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; exit 3")
    assert r.stdout == "/sbin/docker-init -- sh -c tr '\\0' ' ' < /proc/1/cmdline; echo; exit 3 \n"
    assert r.returncode == 3
    # Read-only, whatever the container's user.
    assert dy.run("--init", IMAGE, "sh", "-c", "echo x > /sbin/docker-init").returncode != 0
    inspect = dy("run", "--init", "--name", "initd", IMAGE, "true", check=True)
    assert inspect.returncode == 0
    config = json.loads(dy("inspect", "initd").stdout)[0]
    assert config["Path"] == "true" and config["HostConfig"]["Init"] is True


def test_volume_errors_are_one_line_and_anonymous_volumes(dy: Dockyard, tmp_path: Path) -> None:
    cases = [
        (["-v", "relative/dir:/data"], 'create relative/dir: "relative/dir" includes invalid characters'),
        (["-v", "x:/data"], "create x: volume name is too short"),
        (["--mount", "type=volume,source=bad/x,target=/x"], 'create bad/x: "bad/x" includes invalid characters'),
        (["--mount", "type=bind,target=/x"], "field Source must not be empty"),
        (["-v", ":/data"], "invalid spec: :/data: empty section between colons"),
    ]
    for flags, message in cases:
        r = dy.run(*flags, IMAGE, "true")
        assert r.returncode == 125, (flags, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and message in r.stderr, r.stderr
    dy("run", "--name", "anon", "-v", "/anon", "--mount", "type=volume,target=/m", IMAGE,
       "sh", "-c", "echo kept > /anon/f", check=True)  # fmt: skip
    mounts = json.loads(dy("inspect", "anon").stdout)[0]["Mounts"]
    names = sorted(m["Name"] for m in mounts)
    assert [len(n) for n in names] == [64, 64]
    assert sorted(dy("volume", "ls", "-q").stdout.split()) == names
    dy("rm", "-v", "anon", check=True)
    assert dy("volume", "ls", "-q").stdout.split() == []
    # --rm takes its anonymous volumes along, never named ones.
    dy.run("-v", "/anon", "-v", "named:/named", IMAGE, "true", check=True)
    assert dy("volume", "ls", "-q").stdout.split() == ["named"]


def test_prunes_ask_like_docker(dy: Dockyard) -> None:
    dy("run", "--name", "stopped", "-v", "/anon", IMAGE, "true", check=True)
    dy("volume", "create", "named", check=True)
    asked = dy("container", "prune").stdout
    assert asked == "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
    assert "stopped" in dy("ps", "-a").stdout
    assert dy("container", "prune", input="n\n").returncode == 0 and "stopped" in dy("ps", "-a").stdout
    cid = json.loads(dy("inspect", "stopped").stdout)[0]["Id"]
    out = dy("container", "prune", input="y\n").stdout
    assert out.endswith(f"[y/N] Deleted Containers:\n{cid}\n\nTotal reclaimed space: 0B\n")
    assert dy("container", "prune", "-f").stdout == "Total reclaimed space: 0B\n"

    asked = dy("volume", "prune")
    assert asked.stdout.startswith("WARNING! This will remove anonymous local volumes not used by at least one")
    assert len(dy("volume", "ls", "-q").stdout.split()) == 2
    out = dy("volume", "prune", "-f").stdout
    assert out.startswith("Deleted Volumes:\n") and "named" not in out
    assert dy("volume", "ls", "-q").stdout.split() == ["named"]
    assert dy("volume", "prune", "-a", "-f").stdout == "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n"


def test_ps_quotes_commands_like_docker(dy: Dockyard) -> None:
    dy("run", "--name", "quoted", IMAGE, "sh", "-c", "echo a  b", check=True)
    ps = dy("ps", "-a", "--no-trunc").stdout
    assert "\"sh -c 'echo a  b'\"" in ps
    assert "Exited (0) " in ps and " ago" in ps


def _state(dy: Dockyard, name: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(dy("inspect", name, check=True).stdout)[0]
    return info


def _until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.1)


def test_restart_on_failure_counts_and_stops(dy: Dockyard) -> None:
    dy("run", "-d", "--name", "flaky", "--restart", "on-failure:2", IMAGE, "sh", "-c", "echo run; exit 3", check=True)
    _until(lambda: _state(dy, "flaky")["State"]["Status"] == "exited" and _state(dy, "flaky")["RestartCount"] == 2,
           "two restarts, then exited")  # fmt: skip
    info = _state(dy, "flaky")
    assert info["State"]["ExitCode"] == 3 and info["HostConfig"]["RestartPolicy"] == {
        "Name": "on-failure",
        "MaximumRetryCount": 2,
    }
    assert dy("logs", "flaky").stdout == "run\nrun\nrun\n"
    # A clean exit is not a failure.
    dy("run", "-d", "--name", "clean", "--restart", "on-failure", IMAGE, "true", check=True)
    _until(lambda: _state(dy, "clean")["State"]["Status"] == "exited", "clean exit")
    assert _state(dy, "clean")["RestartCount"] == 0
    for flags, message in [
        (["--restart", "always", "--rm"], "conflicting options: cannot specify both --restart and --rm"),
        (["--restart", "bogus"], "invalid restart policy 'bogus'"),
        (["--restart", "always:3"], "maximum retry count cannot be used with restart policy 'always'"),
        (["--restart", "on-failure:x"], "invalid restart policy format: maximum retry count must be an integer"),
    ]:
        bad = dy("run", *flags, IMAGE, "true")
        assert bad.returncode == 125 and message in bad.stderr, bad.stderr


def test_restart_always_until_stopped_and_after_the_supervisor_dies(dy: Dockyard) -> None:
    dy("run", "-d", "--name", "loop", "--restart", "always", IMAGE, "sh", "-c", "sleep 0.2; exit 1", check=True)
    _until(lambda: _state(dy, "loop")["RestartCount"] >= 2, "restarts")
    dy("stop", "loop", check=True)
    _until(lambda: _state(dy, "loop")["State"]["Status"] == "exited", "stopped")
    count = _state(dy, "loop")["RestartCount"]
    time.sleep(1)
    assert _state(dy, "loop")["State"]["Status"] == "exited" and _state(dy, "loop")["RestartCount"] == count

    # A supervisor killed (as at a reboot) takes its container along; the next command revives it.
    dy("run", "-d", "--name", "svc", "--restart", "always", IMAGE, "sleep", "1000", check=True)
    first = _state(dy, "svc")["State"]["Pid"]
    state = json.loads((dy.root / "containers" / _state(dy, "svc")["Id"] / "state.json").read_text())
    os.kill(state["supervisor"], signal.SIGKILL)
    _until(lambda: not Path(f"/proc/{first}").exists(), "the container died with its supervisor")
    info = _state(dy, "svc")  # this very command revives it
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] != first
    assert info["RestartCount"] == 1
    # unless-stopped, stopped by hand, stays down.
    dy("run", "-d", "--name", "manual", "--restart", "unless-stopped", IMAGE, "sleep", "1000", check=True)
    dy("stop", "-t", "1", "manual", check=True)
    assert _state(dy, "manual")["State"]["Status"] == "exited"
    assert "manual" not in dy("ps").stdout


def test_port_conflict_leaves_the_container_created(dy: Dockyard) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = dy("run", "--name", "clash", "-p", f"{port}:80", IMAGE, "true")
    assert r.returncode == 125
    assert _state(dy, "clash")["State"]["Status"] == "created"
    assert re.search(r"\bCreated\s+clash$", dy("ps", "-a").stdout, re.M)


def test_attach_keeps_the_container_stdin_open(dy: Dockyard) -> None:
    script = "read a; echo got:$a; read b; echo second:$b"
    dy("run", "-d", "-i", "--name", "reader", IMAGE, "sh", "-c", script, check=True)
    first = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "attach", "reader"],
        env=dy.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert first.stdin is not None and first.stdout is not None
    first.stdin.write("one\n")
    first.stdin.close()
    assert first.stdout.readline() == "got:one\n"
    time.sleep(0.5)
    assert _state(dy, "reader")["State"]["Running"] is True  # `read b` still waits
    second = dy("attach", "reader", input="two\n", timeout=30)
    assert second.stdout == "second:two\n" and second.returncode == 0
    assert first.wait(30) == 0 and first.stdout.read() == "second:two\n"


def test_detach_keys(dy: Dockyard) -> None:
    pid, fd = _on_pty(dy, "run", "-it", "--name", "detachable", IMAGE, "sh")
    try:
        assert b"# " in _read_until(fd, b"# ")
        os.write(fd, b"echo o''ne\r")
        assert b"one" in _read_until(fd, b"one\r\n")
        os.write(fd, b"\x10\x11")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)
    assert _state(dy, "detachable")["State"]["Running"] is True
    pid, fd = _on_pty(dy, "attach", "--detach-keys", "ctrl-x,x", "detachable")
    try:
        # Only the container prints "two" unquoted; input typed before the client has made its
        # terminal raw is flushed (TCSAFLUSH), so type until it answers.
        for _ in range(30):
            os.write(fd, b"echo t''wo\r")
            if b"two\r\n" in _read_until(fd, b"two\r\n", timeout=1):
                break
        else:
            raise AssertionError("attach never relayed the input")
        os.write(fd, b"\x18x")
        assert b"read escape sequence" in _read_until(fd, b"read escape sequence")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 1
    finally:
        os.close(fd)
    assert _state(dy, "detachable")["State"]["Running"] is True
    bad = dy("attach", "--detach-keys", "ctrl-1", "detachable")
    assert bad.returncode != 0 and "Invalid detach keys (ctrl-1) provided" in bad.stderr


def test_rmi_of_one_of_two_tags_only_untags_an_image_in_use(dy: Dockyard) -> None:
    seed(dy.root, "test/two:a", [busybox_layer()], {"Env": ["TWO=1"]})
    seed(dy.root, "test/two:b", [busybox_layer()], {"Env": ["TWO=1"]})
    dy("run", "--name", "user", "test/two:b", "true", check=True)
    r = dy("rmi", "test/two:b")
    assert (r.returncode, r.stdout) == (0, "Untagged: test/two:b\n"), r.stderr
    assert dy.run("test/two:a", "true").returncode == 0
    last = dy("rmi", "test/two:a")
    assert last.returncode == 1 and "(must force)" in last.stderr
