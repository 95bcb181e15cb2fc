"""Detached containers, logs, stop, start, exec, attach, rm and prune (issue 5, points 7 and 8)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from tests.runtime.conftest import IMAGE, Dockyard
from tests.runtime.images import busybox_layer, seed

pytestmark = pytest.mark.privileged


def _state(dy: Dockyard, name: str) -> dict[str, object]:
    state: dict[str, object] = json.loads(dy("inspect", name, check=True).stdout)[0]["State"]
    return state


def _wait_log(dy: Dockyard, name: str, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = dy("logs", name).stdout
        if text in out:
            return out
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in the logs of {name}")


def test_detached_logs_stop_and_ps(dy: Dockyard) -> None:
    script = "trap 'echo got-term; exit 0' TERM; echo started; echo oops >&2; while :; do sleep 0.1; done"
    cid = dy("run", "-d", "--name", "svc", IMAGE, "sh", "-c", script, check=True).stdout.strip()
    assert len(cid) == 64
    _wait_log(dy, "svc", "started")
    logs = dy("logs", "svc")
    assert logs.stdout == "started\n"
    assert logs.stderr == "oops\n"
    ps = dy("ps", check=True).stdout
    assert "svc" in ps and "Up " in ps
    assert dy("ps", "-q").stdout.strip() == cid[:12]

    assert dy("stop", "-t", "5", "svc", check=True).stdout.strip() == "svc"
    assert "got-term" in dy("logs", "svc").stdout
    state = _state(dy, "svc")
    assert state["Status"] == "exited" and state["ExitCode"] == 0
    assert dy("ps", "-q").stdout.strip() == ""
    assert "Exited (0)" in dy("ps", "-a").stdout


def test_stop_kills_after_timeout_and_start_again(dy: Dockyard) -> None:
    dy("run", "-d", "--name", "stubborn", IMAGE, "sleep", "1000", check=True)
    started = time.monotonic()
    dy("stop", "-t", "1", "stubborn", check=True)
    assert time.monotonic() - started < 8
    assert _state(dy, "stubborn")["ExitCode"] == 137  # PID 1 ignores SIGTERM it has no handler for

    dy("start", "stubborn", check=True)
    state = _state(dy, "stubborn")
    assert state["Running"] is True
    assert dy("rm", "stubborn").returncode != 0  # running: needs -f
    dy("rm", "-f", "stubborn", check=True)
    assert "stubborn" not in dy("ps", "-a").stdout


def test_stop_sends_the_image_stop_signal_and_kill_sends_any(dy: Dockyard) -> None:
    seed(dy.root, "test/stopsignal:1", [busybox_layer()], {"StopSignal": "SIGUSR1"})
    script = "trap 'echo got-usr1; exit 0' USR1; trap 'echo got-hup' HUP; echo up; while :; do sleep 0.1; done"
    dy("run", "-d", "--name", "usr1", "test/stopsignal:1", "sh", "-c", script, check=True)
    _wait_log(dy, "usr1", "up")
    dy("kill", "-s", "HUP", "usr1", check=True)
    _wait_log(dy, "usr1", "got-hup")
    dy("stop", "-t", "10", "usr1", check=True)
    assert "got-usr1" in dy("logs", "usr1").stdout
    assert _state(dy, "usr1")["ExitCode"] == 0


def test_logs_follow(dy: Dockyard) -> None:
    dy(
        "run",
        "-d",
        "--name",
        "ticker",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick$i; sleep 0.3; done",
        check=True,
    )
    r = dy("logs", "-f", "ticker", timeout=30)
    assert r.stdout.split() == ["tick1", "tick2", "tick3"]


def test_exec_into_running_container(dy: Dockyard) -> None:
    dy("run", "-d", "--name", "target", "-e", "FROM_RUN=1", "-w", "/tmp", IMAGE, "sleep", "1000", check=True)
    r = dy("exec", "target", "sh", "-c", "echo $$; pwd; echo $FROM_RUN; ps -o pid,comm | grep -c sleep; hostname")
    assert r.returncode == 0, r.stderr
    pid, cwd, env, sleeps, host = r.stdout.split()
    assert int(pid) > 1 and cwd == "/tmp" and env == "1" and sleeps == "1"
    assert host == json.loads(dy("inspect", "target").stdout)[0]["Config"]["Hostname"]
    assert dy("exec", "target", "sh", "-c", "exit 5").returncode == 5
    assert dy("exec", "-u", "nobody", "target", "id", "-u").stdout.strip() == "65534"
    assert dy("exec", "-i", "target", "cat", input="through stdin").stdout == "through stdin"
    assert dy("exec", "target", "nope").returncode == 127


def test_container_layer_discarded_on_rm(dy: Dockyard) -> None:
    dy("run", "--name", "writer", IMAGE, "sh", "-c", "echo data > /etc/written; rm /bin/vi", check=True)
    upper = json.loads(dy("inspect", "writer").stdout)[0]["GraphDriver"]["Data"]["UpperDir"]
    assert os.path.exists(os.path.join(upper, "etc/written"))
    # The image is untouched: a new container sees neither change.
    assert dy.run(IMAGE, "sh", "-c", "ls /etc/written 2>&1; ls /bin/vi").stdout.split()[-1] == "/bin/vi"
    dy("start", "writer", check=True)
    dy("stop", "writer")
    dy("rm", "writer", check=True)
    assert not os.path.exists(upper)


def test_container_prune(dy: Dockyard) -> None:
    dy("run", "--name", "done1", IMAGE, "true", check=True)
    dy("run", "-d", "--name", "alive", IMAGE, "sleep", "100", check=True)
    out = dy("container", "prune", "-f", check=True).stdout
    names = dy("ps", "-a").stdout
    assert "done1" not in names and "alive" in names
    assert "Deleted Containers" in out


def _read_until(fd: int, needle: bytes, timeout: float = 15) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _on_pty(dy: Dockyard, *args: str) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(dy.env)
        os.execv(sys.executable, [sys.executable, "-m", "dockyard", *args])
    return pid, fd


def test_exec_with_tty(dy: Dockyard) -> None:
    dy("run", "-d", "--name", "shellhost", IMAGE, "sleep", "1000", check=True)
    pid, fd = _on_pty(dy, "exec", "-it", "shellhost", "sh")
    try:
        assert b"# " in _read_until(fd, b"# ")
        os.write(fd, b"tty; echo $$; exit 9\r")
        out = _read_until(fd, b"exit 9\r\n", timeout=5) + _read_until(fd, b"\n", timeout=5)
        assert b"/dev/pts/" in out
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 9
    finally:
        os.close(fd)


def test_interactive_tty(dy: Dockyard) -> None:
    pid, fd = _on_pty(dy, "run", "--rm", "-it", IMAGE, "sh")
    try:
        import fcntl

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 97, 0, 0))
        assert b"# " in _read_until(fd, b"# ")
        os.write(fd, b"tty; echo $TERM; stty size\r")
        out = _read_until(fd, b"31 97")
        assert b"/dev/pts/0" in out and b"xterm" in out and b"31 97" in out
        # The window size follows a resize of the caller's terminal.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        time.sleep(0.3)
        os.write(fd, b"stty size; exit 7\r")
        assert b"40 120" in _read_until(fd, b"40 120")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7
    finally:
        os.close(fd)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_interactive_stdin_without_tty(dy: Dockyard) -> None:
    r = dy("run", "--rm", "-i", IMAGE, "sh", "-c", "tr a-z A-Z", input="hello\n")
    assert r.stdout == "HELLO\n"
    # Without -i, stdin is empty, as with Docker.
    assert dy("run", "--rm", IMAGE, "cat", input="ignored").stdout == ""


def test_attach_to_detached_container(dy: Dockyard) -> None:
    dy("run", "-d", "-i", "--name", "echoer", IMAGE, "sh", "-c", "read line; echo got:$line; exit 3", check=True)
    env = dy.env
    proc = subprocess.run(
        [sys.executable, "-m", "dockyard", "attach", "echoer"],
        input="ping\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout == "got:ping\n"
    assert proc.returncode == 3
