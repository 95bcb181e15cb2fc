"""Where the Docker engine runs: the run flags and behaviours of issue 11 give the same output,
error wording and exit code under `docker` and `dockyard`, for one busybox image built by
`docker build`, pushed to a Dockyard and pulled by the runtime. Docker's "docker: " prefix and
Dockyard's "dockyard: " are the only difference allowed in an error line."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import require_busybox, require_tool
from tests.runtime.conftest import Dockyard, require_tini
from tests.runtime.test_lifecycle import _read_until
from tests.servers import DockerEngine, start_dockerd, start_registry

pytestmark = [pytest.mark.privileged, pytest.mark.e2e]


@dataclass
class Both:
    engine: DockerEngine
    dy: Dockyard
    ref: str

    def docker(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], env=self.engine.env, input=input, capture_output=True, text=True, timeout=120,
            stdin=None if input is not None else subprocess.DEVNULL,
        )  # fmt: skip


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    require_tool("dockerd")
    require_tool("docker")
    e = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    yield e
    e.stop()


@pytest.fixture(scope="module")
def image(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ctx = tmp_path_factory.mktemp("ctx")
    root = ctx / "rootfs"
    (root / "bin").mkdir(parents=True)
    busybox = require_busybox()
    shutil.copy2(busybox, root / "bin/busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    for directory in ("etc", "tmp", "sbin"):
        (root / directory).mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY rootfs/ /\n")
    registry = start_registry(tmp_path_factory.mktemp("registry") / "data")
    try:
        ref = f"{registry.address}/behaviours/busybox:1"
        engine.docker("build", "-q", "-t", ref, str(ctx))
        engine.docker("push", ref)
        yield ref
    finally:
        registry.stop()


@pytest.fixture
def both(engine: DockerEngine, image: str, dy: Dockyard) -> Iterator[Both]:
    dy("pull", "-q", image, check=True)
    pair = Both(engine, dy, image)
    yield pair
    ids = pair.docker("ps", "-aq").stdout.split()
    if ids:
        pair.docker("rm", "-f", *ids)
    pair.docker("volume", "prune", "-f")


def _error(result: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    line = result.stderr.strip().splitlines()[0] if result.stderr.strip() else ""
    return result.returncode, line.removeprefix("docker: ").removeprefix("dockyard: ")


ERRORS = [
    ["-v", "relative/dir:/data"],
    ["-v", "bad$:/data"],
    ["-v", ":/data"],
    ["--mount", "type=volume,source=bad/x,target=/x"],
    ["--mount", "type=bind,target=/x"],
    ["--ulimit", "bogus=1"],
    ["--ulimit", "nofile=300:200"],
    ["--ulimit", "nofile"],
    ["--ulimit", "nofile=1:2:3"],
    ["--ulimit", "nofile=a"],
    ["--add-host", "foo"],
    ["--tmpfs", "relative"],
    ["--restart", "always", "--rm"],
    ["--restart", "bogus"],
    ["--restart", "always:3"],
    ["--restart", "on-failure:-1"],
    ["--restart", ":3"],
    ["--restart", "on-failure:x"],
]


@pytest.mark.parametrize("flags", ERRORS, ids=[" ".join(f) for f in ERRORS])
def test_same_error_as_docker(both: Both, flags: list[str]) -> None:
    expected = _error(both.docker("run", *flags, both.ref, "true"))
    assert expected[0] == 125 and expected[1], expected
    assert _error(both.dy("run", *flags, both.ref, "true")) == expected


OUTPUTS: list[tuple[list[str], list[str], list[str]]] = [
    # (docker flags, dockyard flags, command): Dockyard's private network is Docker's "none" plus loopback.
    (["--network", "none"], [], ["cat", "/etc/resolv.conf"]),
    (["--network", "host"], ["--network", "host"], ["sh", "-c", "cat /etc/hosts /etc/resolv.conf"]),
    (["--network", "none", "--add-host", "foo:1.2.3.4", "--add-host", "bar=::1"],
     ["--add-host", "foo:1.2.3.4", "--add-host", "bar=::1"], ["grep", "-v", "127.0.1.1", "/etc/hosts"]),
    (["--network", "none", "--dns", "9.9.9.9", "--dns-search", "example.com", "--dns-option", "ndots:2"],
     ["--dns", "9.9.9.9", "--dns-search", "example.com", "--dns-option", "ndots:2"], ["cat", "/etc/resolv.conf"]),
    (["--network", "none", "--dns-option", "ndots:3"], ["--dns-option", "ndots:3"], ["cat", "/etc/resolv.conf"]),
    (["--tmpfs", "/t:size=1m,mode=700"], ["--tmpfs", "/t:size=1m,mode=700"],
     ["sh", "-c", "grep ' /t ' /proc/mounts; stat -c %a /t"]),
    (["--read-only", "--tmpfs", "/run:exec,size=2m"], ["--read-only", "--tmpfs", "/run:exec,size=2m"],
     ["sh", "-c", "grep ' /run ' /proc/mounts; touch /run/x && echo writable"]),
    (["--ulimit", "nofile=100:200", "--ulimit", "core=-1"], ["--ulimit", "nofile=100:200", "--ulimit", "core=-1"],
     ["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"]),
    (["--init"], ["--init"], ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; grep -c docker-init /proc/mounts"]),
    (["--init"], ["--init"], ["sh", "-c", "kill -TERM $$; echo survived"]),
    (["--init"], ["--init"], ["sh", "-c", "exit 7"]),
]  # fmt: skip


@pytest.mark.parametrize(("docker_flags", "flags", "command"), OUTPUTS, ids=[" ".join(o[1] + o[2]) for o in OUTPUTS])
def test_same_output_as_docker(both: Both, docker_flags: list[str], flags: list[str], command: list[str]) -> None:
    if "--init" in flags:
        require_tini()
    expected = both.docker("run", "--rm", *docker_flags, both.ref, *command)
    assert expected.stdout or expected.returncode, expected.stderr
    ours = both.dy("run", "--rm", *flags, both.ref, *command)
    assert (ours.stdout, ours.returncode) == (expected.stdout, expected.returncode), ours.stderr


def _column(table: str, name: str, row: int = 1) -> str:
    lines = table.splitlines()
    header = lines[0]
    start = header.index(name)
    rest = header[start + len(name) :]
    end = start + len(name) + (len(rest) - len(rest.lstrip(" "))) if rest.strip() else None
    return lines[row][start:end].strip()


def test_ps_columns_and_created_status_as_docker(both: Both) -> None:
    for cli in (both.docker, both.dy):
        assert cli("run", "--name", "quoted", both.ref, "sh", "-c", "echo a  b").returncode == 0
        assert cli("run", "--name", "never", both.ref, "nope").returncode == 127
    for flags in (["--no-trunc"], []):
        for name in ("quoted", "never"):
            theirs = both.docker("ps", "-a", *flags, "--filter", f"name={name}").stdout
            table = both.dy("ps", "-a", *flags).stdout.splitlines()
            mine = "\n".join([table[0], *(line for line in table[1:] if line.endswith(name))])
            assert _column(mine, "COMMAND") == _column(theirs, "COMMAND")
    assert _column(both.docker("ps", "-a", "--filter", "name=never").stdout, "STATUS") == "Created"
    never = [line for line in both.dy("ps", "-a").stdout.splitlines() if line.endswith("never")]
    assert "   Created   " in never[0]


def test_images_created_column_as_docker(both: Both) -> None:
    # The same image config, so the same age, in go-units' words ("13 seconds ago"); read twice
    # more should the two reads straddle a change of unit ("59 seconds" / "About a minute").
    for _ in range(3):
        theirs = _column(both.docker("images", both.ref).stdout, "CREATED")
        ours = _column(both.dy("images", both.ref).stdout, "CREATED")
        if ours.split()[1:] == theirs.split()[1:]:
            break
    assert theirs.endswith(" ago") and ours.split()[1:] == theirs.split()[1:], (ours, theirs)


def test_prune_questions_as_docker(both: Both) -> None:
    for cli in (both.docker, both.dy):
        assert cli("run", "--name", "stopped", both.ref, "true").returncode == 0
    # No answer (stdin at its end) deletes nothing.
    theirs = both.docker("container", "prune", input="")
    ours = both.dy("container", "prune", input="")
    assert (ours.stdout, ours.returncode) == (theirs.stdout, theirs.returncode)
    assert "stopped" in both.dy("ps", "-a").stdout
    theirs = both.docker("container", "prune", input="y\n").stdout
    ours = both.dy("container", "prune", input="y\n").stdout
    assert ours.replace(ours.split("\n")[2], theirs.split("\n")[2]) == theirs  # the ids differ
    assert both.docker("container", "prune", "-f").stdout == both.dy("container", "prune", "-f").stdout

    # Docker's engine here speaks API 1.41, whose volume prune takes named volumes too: `-a` for us.
    theirs = both.docker("volume", "prune", input="").stdout
    assert both.dy("volume", "prune", "-a", input="").stdout == theirs
    assert both.docker("image", "prune", input="").stdout == both.dy("image", "prune", input="").stdout


def test_anonymous_volumes_as_docker(both: Both) -> None:
    for cli in (both.docker, both.dy):
        assert cli("run", "--name", "anon", "-v", "/anon", "--mount", "type=volume,target=/m", both.ref,
                   "sh", "-c", "echo kept > /anon/f").returncode == 0  # fmt: skip
        names = cli("volume", "ls", "-q").stdout.split()
        assert len(names) == 2 and all(len(n) == 64 for n in names)
        assert cli("rm", "-v", "anon").returncode == 0
        assert cli("volume", "ls", "-q").stdout == ""
        assert cli("run", "--rm", "-v", "/anon", "-v", "named:/named", both.ref, "true").returncode == 0
        assert cli("volume", "ls", "-q").stdout.split() == ["named"]


def test_rmi_of_an_image_in_use_as_docker(both: Both) -> None:
    lines = []
    for cli in (both.docker, both.dy):
        assert cli("run", "--name", "user", both.ref, "true").returncode == 0
        short = cli("ps", "-aq").stdout.split()[0]
        result = cli("rmi", both.ref)
        assert result.returncode == 1
        lines.append(result.stderr.strip().splitlines()[0].replace(short, "<container>"))
    assert lines[1] == lines[0]


def _on_pty(argv: list[str], env: dict[str, str]) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    return pid, fd


def _type_until(fd: int, line: bytes, answer: bytes) -> bytes:
    """Input typed before a client has made its terminal raw is flushed: type until it answers."""
    for _ in range(30):
        os.write(fd, line)
        out = _read_until(fd, answer, timeout=1)
        if answer in out:
            return out
    raise AssertionError(f"no {answer!r} in answer to {line!r}")


def test_detach_keys_as_docker(both: Both) -> None:
    for argv, env in ((["docker"], both.engine.env), ([sys.executable, "-m", "dockyard"], both.dy.env)):
        results = []
        pid, fd = _on_pty([*argv, "run", "-it", "--name", "detachable", both.ref, "sh"], env)
        try:
            _type_until(fd, b"echo o''ne\r", b"one\r\n")
            os.write(fd, b"\x10\x11")
            results.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        finally:
            os.close(fd)
        pid, fd = _on_pty([*argv, "attach", "--detach-keys", "ctrl-x,x", "detachable"], env)
        try:
            _type_until(fd, b"echo t''wo\r", b"two\r\n")
            os.write(fd, b"\x18x")
            tail = _read_until(fd, b"read escape sequence")
            results.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        finally:
            os.close(fd)
        running = subprocess.run([*argv, "inspect", "detachable"], env=env, capture_output=True, text=True)
        assert json.loads(running.stdout)[0]["State"]["Running"] is True, argv
        assert results == [0, 1] and b"read escape sequence" in tail, (argv, results, tail)
