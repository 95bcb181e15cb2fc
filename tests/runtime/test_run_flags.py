"""Run flags and behaviours matched to Docker (issue 11): --tmpfs, --ulimit, --add-host, --dns*,
--init as tini, the host network's /etc files, volume errors and anonymous volumes, prune prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.rootfs import INIT_BINARY
from tests.conftest import require
from tests.runtime.conftest import IMAGE, Dockyard

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
    require(Path(INIT_BINARY).is_file(), "tini is not installed")
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
