"""The everyday commands and flags (issue 11, section 3) against the real kernel: ps filters and
--format, inspect -f, logs --tail/--since, create/restart/wait/rename/top/stats, cp both ways
with owners, diff, export, save/load, tag, info/version/system df, the command groups, and
published ports (-p 80, -P, ranges, /udp)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests import imagebuild
from tests.conftest import require_tool
from tests.runtime.conftest import IMAGE, Dockyard
from tests.runtime.images import busybox_layer, seed
from tests.runtime.test_network import HTTPD, _get

pytestmark = pytest.mark.privileged


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_rm_of_exited_containers_word_for_word(dy: Dockyard) -> None:
    dy("run", "--name", "ok", IMAGE, "true", check=True)
    dy("run", "--name", "bad", IMAGE, "sh", "-c", "exit 3")
    dy("create", "--name", "fresh", IMAGE, "true", check=True)
    dy("run", "-d", "--name", "up", IMAGE, "sleep", "1000", check=True)
    exited = dy("ps", "-a", "-q", "-f", "status=exited").stdout.split()
    assert len(exited) == 2
    # `docker rm $(docker ps -a -q -f status=exited)`, through a real shell
    shell = subprocess.run(
        ["sh", "-c", f"{sys.executable} -m dockyard rm $({sys.executable} -m dockyard ps -a -q -f status=exited)"],
        env=dy.env,
        capture_output=True,
        text=True,
    )
    assert shell.returncode == 0, shell.stderr
    assert sorted(shell.stdout.split()) == sorted(exited)
    names = dy("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert sorted(names) == ["fresh", "up"]


def test_ps_filters(dy: Dockyard) -> None:
    dy("run", "--name", "alpha", "-l", "tier=web", "-l", "team", IMAGE, "true", check=True)
    dy("run", "--name", "beta", "-l", "tier=db", IMAGE, "sh", "-c", "exit 4")
    dy("create", "--name", "gamma", IMAGE, "true", check=True)
    seed(dy.root, "test/other:1", [busybox_layer([])], {"Labels": {"from": "image"}})
    dy("run", "--name", "delta", "test/other:1", "true", check=True)

    def names(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("-f", f)]
        r = dy("ps", "-a", *args, "--format", "{{.Names}}", check=True)
        return sorted(r.stdout.split())

    assert names("status=exited") == ["alpha", "beta", "delta"]
    assert names("status=created") == ["gamma"]
    assert names("status=created", "status=exited") == ["alpha", "beta", "delta", "gamma"]
    assert names("exited=4") == ["beta"]
    assert names("exited=0") == ["alpha", "delta"]
    assert names("name=al") == ["alpha"]
    assert names("name=^/b") == ["beta"]
    assert names("label=tier") == ["alpha", "beta"]
    assert names("label=tier=db") == ["beta"]
    assert names("label=team") == ["alpha"]
    assert names("label=from=image") == ["delta"]
    assert names("ancestor=test/other:1") == ["delta"]
    assert names("ancestor=" + IMAGE) == ["alpha", "beta", "gamma"]
    beta_id = dy("inspect", "-f", "{{.Id}}", "beta", check=True).stdout.strip()
    assert names("id=" + beta_id[:5]) == ["beta"]
    assert names("status=exited", "name=a") == ["alpha", "beta", "delta"]
    assert names("status=exited", "label=tier=web") == ["alpha"]
    # status= lists stopped containers without -a, as Docker does
    assert dy("ps", "-q", "-f", "status=exited").stdout.split().__len__() == 3
    for bad, message in (
        ("nosuch=1", "Invalid filter 'nosuch'"),
        ("status=sleeping", "Invalid filter 'status=sleeping'"),
    ):
        r = dy("ps", "-f", bad)
        assert r.returncode == 1 and message in r.stderr, r.stderr


def test_ps_format_table_and_json(dy: Dockyard) -> None:
    dy("run", "--name", "one", "-l", "a=b", IMAGE, "echo", "a much longer command line", check=True)
    table = dy("ps", "-a", "--format", 'table {{.Names}}\\t{{.Command}}\\t{{.Label "a"}}', check=True).stdout
    assert _lines(table) == ["NAMES     COMMAND                  LABEL", 'one       "echo \'a much longer…"   b']
    full = dy("ps", "-a", "--no-trunc", "--format", "{{.Command}}|{{.State}}|{{.Labels}}", check=True).stdout
    assert full == "\"echo 'a much longer command line'\"|exited|a=b\n"
    row = json.loads(dy("ps", "-a", "--format", "json", check=True).stdout)
    assert row["Names"] == "one" and row["State"] == "exited" and row["Status"].startswith("Exited (0) ")
    header = _lines(dy("ps", "-a", check=True).stdout)[0]
    assert header.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    r = dy("ps", "--format", "{{.Names")
    assert r.returncode == 1 and "template" in r.stderr


def test_inspect_carries_what_scripts_read(dy: Dockyard, tmp_path: Path) -> None:
    seed(
        dy.root,
        "test/web:1",
        [busybox_layer([])],
        {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "ExposedPorts": {"8080/tcp": {}}, "Labels": {"x": "1"}},
    )
    (tmp_path / "host").mkdir()
    dy(
        "run", "-d", "--name", "web", "-l", "y=2", "-p", "127.0.0.1::80", "-v", f"{tmp_path / 'host'}:/h:ro",
        "-v", "vol1:/v", "--entrypoint", "/bin/sleep", "test/web:1", "1000", check=True,
    )  # fmt: skip
    data = json.loads(dy("inspect", "web", check=True).stdout)[0]
    assert data["Config"]["Entrypoint"] == ["/bin/sleep"]
    assert data["Config"]["Cmd"] == ["1000"]
    assert data["Config"]["Labels"] == {"x": "1", "y": "2"}
    assert data["Config"]["ExposedPorts"] == {"8080/tcp": {}, "80/tcp": {}}
    assert data["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    ports = data["NetworkSettings"]["Ports"]
    assert ports["8080/tcp"] is None
    assert ports["80/tcp"][0]["HostIp"] == "127.0.0.1" and int(ports["80/tcp"][0]["HostPort"]) > 0
    mounts = {m["Destination"]: m for m in data["Mounts"]}
    assert mounts["/h"] == {"Type": "bind", "Source": str(tmp_path / "host"), "Destination": "/h", "Mode": "ro",
                            "RW": False, "Propagation": "rprivate"}  # fmt: skip
    assert mounts["/v"]["Type"] == "volume" and mounts["/v"]["Name"] == "vol1" and mounts["/v"]["RW"] is True
    assert data["State"]["Status"] == "running" and data["State"]["Pid"] > 0

    def fmt(template: str, *names: str) -> str:
        return dy("inspect", "-f", template, *names, check=True).stdout

    assert fmt("{{.State.Status}}", "web") == "running\n"
    assert fmt("{{.Id}}", "web") == data["Id"] + "\n"
    assert json.loads(fmt("{{json .Config}}", "web"))["Labels"] == {"x": "1", "y": "2"}
    assert fmt("{{range .Mounts}}{{.Destination}} {{end}}", "web") == "/h /v \n"
    assert fmt('{{index .Config.Labels "y"}}', "web") == "2\n"
    assert fmt('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostIp}}', "web") == "127.0.0.1\n"
    both = dy("inspect", "-f", "{{.Name}}", "web", IMAGE)  # an image has no Name: an error, as in Docker
    assert (both.stdout, both.returncode) == ("/web\n", 1) and 'no entry for key "Name"' in both.stderr
    assert dy("inspect", "-f", "{{.Name", "web").returncode == 64
    image = json.loads(dy("inspect", "--type", "image", IMAGE, check=True).stdout)[0]
    assert image["Id"].startswith("sha256:")
    assert dy("inspect", "--type", "image", "web").returncode == 1


def test_logs_tail_and_since(dy: Dockyard) -> None:
    dy("run", "--name", "chatty", IMAGE, "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done", check=True)
    assert dy("logs", "--tail", "2", "chatty").stdout == "line4\nline5\n"
    assert dy("logs", "-n", "1", "chatty").stdout == "line5\n"
    assert dy("logs", "--tail", "0", "chatty").stdout == ""
    assert dy("logs", "--tail", "all", "chatty").stdout.count("line") == 5
    assert dy("logs", "--since", "1h", "chatty").stdout.count("line") == 5
    assert dy("logs", "--since", "2100-01-01T00:00:00Z", "chatty").stdout == ""
    assert dy("logs", "--until", "2000-01-01", "chatty").stdout == ""
    stamped = dy("logs", "-t", "--tail", "1", "chatty").stdout
    assert stamped.endswith(" line5\n") and stamped[:4].isdigit()
    # --tail counts the lines of both streams together, as Docker does
    dy("run", "--name", "both", IMAGE, "sh", "-c", "echo err >&2; sleep 0.5; echo out", check=True)
    last = dy("logs", "--tail", "1", "both")
    assert (last.stdout, last.stderr) == ("out\n", "")
    assert dy("logs", "both").stderr == "err\n"
    assert dy("logs", "--since", "abc", "both").returncode == 1


def test_images_filters(dy: Dockyard) -> None:
    from runtime.images import ImageStore

    seed(dy.root, "test/old:1", [busybox_layer([])], {"Labels": {"v": "1"}})
    # An image known only by digest (pulled as NAME@DIGEST, its tag since moved): Docker's dangling
    untagged = seed(dy.root, "test/gone:1", [busybox_layer([])], {"Labels": {"v": "2"}})
    store = ImageStore(dy.root)
    store.tag(f"test/gone@{untagged.manifest_digest}", untagged.manifest_digest)
    with store._refs_update() as refs:
        del refs["docker.io/test/gone:1"]
    assert dy("images", "-q", "--filter", "dangling=true", check=True).stdout.split() == [untagged.short_id]
    assert untagged.short_id not in dy("images", "-q", "-f", "dangling=false", check=True).stdout
    listed = dy("images", "-f", "reference=test/old*", check=True).stdout
    assert "test/old" in listed and "test/busybox" not in listed
    assert dy("images", "-f", "label=v=1", "-q", check=True).stdout.split() == [
        dy("inspect", "-f", "{{.Id}}", "test/old:1").stdout.strip()[7:19]
    ]
    assert dy("images", "--format", "{{.Repository}}:{{.Tag}}", "-f", "reference=test/old*").stdout == "test/old:1\n"
    table = dy("images", "--format", "table {{.Repository}}\t{{.Tag}}", "test/old:1", check=True).stdout
    assert table == "REPOSITORY   TAG\ntest/old     1\n"
    r = dy("images", "-f", "nonsense=1")
    assert r.returncode == 1 and "Invalid filter 'nonsense'" in r.stderr


def test_create_start_wait_restart_rename(dy: Dockyard) -> None:
    cid = dy("create", "--name", "job", IMAGE, "sh", "-c", "echo run; exit 7", check=True).stdout.strip()
    assert len(cid) == 64
    assert dy("inspect", "-f", "{{.State.Status}}", "job").stdout == "created\n"
    assert dy("ps", "-a", "--format", "{{.Status}}").stdout == "Created\n"
    dy("start", "job", check=True)
    assert dy("wait", "job").stdout == "7\n"
    assert dy("restart", "job", check=True).stdout == "job\n"
    assert dy("wait", "job").stdout == "7\n"
    assert dy("logs", "job").stdout == "run\nrun\n"
    dy("rename", "job", "task", check=True)
    assert dy("ps", "-a", "--format", "{{.Names}}").stdout == "task\n"
    dy("create", "--name", "other", IMAGE, "true", check=True)
    r = dy("rename", "task", "other")
    assert r.returncode == 1 and "already in use" in r.stderr
    assert dy("wait", "nosuch").returncode == 1
    # `run -d --rm` then `wait`: the code, though the container is gone the moment it ends
    dy("run", "-d", "--rm", "--name", "brief", IMAGE, "sh", "-c", "sleep 3; exit 9", check=True)
    assert dy("wait", "brief").stdout == "9\n"
    assert dy("create", "--name", "x", IMAGE, "true").returncode == 125


def test_top_and_stats(dy: Dockyard) -> None:
    require_tool("ps")  # top runs the host's ps, as Docker's does
    dy("run", "-d", "--name", "busy", "-m", "64m", IMAGE, "sh", "-c", "sleep 1000 & sleep 1001", check=True)
    deadline = time.monotonic() + 10
    while "sleep 1000" not in (top := dy("top", "busy").stdout) and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = _lines(top)
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert any(line.endswith("sleep 1000") for line in lines) and any(line.endswith("sleep 1001") for line in lines)
    assert len(lines) == 3, top  # the container's processes only
    stats = _lines(dy("stats", "--no-stream", check=True).stdout)
    assert stats[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                                "NET", "I/O", "BLOCK", "I/O", "PIDS"]  # fmt: skip
    # sh execs its last command: two sleeps
    assert "busy" in stats[1] and " / 64MiB " in stats[1] and stats[1].split()[-1] == "2"
    custom = dy("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "busy", check=True).stdout
    assert custom == "busy 2\n"
    dy("stop", "-t", "0", "busy")
    assert dy("top", "busy").returncode == 1


def test_cp_both_ways_with_owners(dy: Dockyard, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A\n")
    (src / "sub" / "b.txt").write_text("B\n")
    (src / "link").symlink_to("a.txt")
    for path in (src, src / "a.txt", src / "sub", src / "sub" / "b.txt"):
        os.chown(path, 1234, 1234)
    dy("create", "--name", "box", "-u", "65534", IMAGE, "true", check=True)
    # into a stopped container: a file, a directory, a directory's contents, and -a
    dy("cp", str(src / "a.txt"), "box:/tmp/", check=True)
    dy("cp", str(src), "box:/copied", check=True)
    dy("cp", str(src) + "/.", "box:/tmp", check=True)
    dy("cp", "-a", str(src / "a.txt"), "box:/kept.txt", check=True)
    dy("run", "-d", "--name", "live", IMAGE, "sleep", "1000", check=True)
    dy("cp", str(src / "sub"), "live:/etc/", check=True)  # into a running one

    def owners_in(container: str, path: str) -> dict[str, int]:
        stream = subprocess.run([sys.executable, "-m", "dockyard", "cp", f"{container}:{path}", "-"], env=dy.env,
                                capture_output=True, check=True).stdout  # fmt: skip
        with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
            return {m.name: m.uid for m in tar.getmembers()}

    # The Docker engine's rule: the source's owners, or with -a the container's user.
    assert owners_in("box", "/tmp/a.txt") == {"a.txt": 1234}
    assert owners_in("box", "/kept.txt") == {"kept.txt": 65534}
    assert owners_in("box", "/copied") == {"copied": 1234, "copied/a.txt": 1234, "copied/link": 0,
                                           "copied/sub": 1234, "copied/sub/b.txt": 1234}  # fmt: skip
    assert owners_in("live", "/etc/sub") == {"sub": 1234, "sub/b.txt": 1234}
    out = tmp_path / "out"
    out.mkdir()
    dy("cp", "box:/copied", str(out), check=True)
    dy("cp", "-a", "box:/tmp/a.txt", str(out / "a-copy.txt"), check=True)
    dy("cp", "live:/etc/sub/b.txt", str(out / "from-live.txt"), check=True)
    assert (out / "copied" / "a.txt").read_text() == "A\n"
    assert (out / "copied" / "sub" / "b.txt").read_text() == "B\n"
    assert (out / "copied" / "link").readlink() == Path("a.txt")
    assert (out / "from-live.txt").read_text() == "B\n"
    # Copied out: the caller's, -a or not (the Docker CLI's rule).
    assert {p.stat().st_uid for p in out.rglob("*")} == {0}
    dy("start", "box", check=True)
    dy("wait", "box", check=True)
    diff = dy("diff", "box", check=True).stdout
    for line in ("A /copied", "A /copied/sub/b.txt", "A /kept.txt", "C /tmp", "A /tmp/a.txt", "A /tmp/sub"):
        assert line in _lines(diff), diff
    # Absolute symlinks in the container lead to the container's files, never the host's.
    dy("exec", "live", "ln", "-s", "/etc", "/hostetc", check=True)
    dy("cp", "live:/hostetc/passwd", str(out / "passwd"), check=True)
    assert (out / "passwd").read_text() == dy("exec", "live", "cat", "/etc/passwd").stdout
    assert (out / "passwd").read_text() != Path("/etc/passwd").read_text()
    dy("cp", str(src / "a.txt"), "live:/hostetc/planted", check=True)
    assert not Path("/etc/planted").exists()
    assert dy("exec", "live", "cat", "/etc/planted").stdout == "A\n"
    r = dy("cp", "box:/nonexistent", str(out))
    assert r.returncode == 1 and "Could not find the file /nonexistent" in r.stderr
    assert dy("cp", str(src), "box:/kept.txt").returncode == 1  # a directory onto a file


def test_diff_and_export(dy: Dockyard, tmp_path: Path) -> None:
    script = "mkdir /new && echo x > /new/f && rm /bin/vi && echo >> /etc/motd"
    dy("run", "--name", "changed", IMAGE, "sh", "-c", script, check=True)
    assert dy("diff", "changed", check=True).stdout == "C /bin\nD /bin/vi\nC /etc\nA /etc/motd\nA /new\nA /new/f\n"
    archive = tmp_path / "c.tar"
    dy("export", "-o", str(archive), "changed", check=True)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        assert {"new/f", "bin/busybox", "etc/motd"} <= names
        assert "bin/vi" not in names
        assert tar.extractfile("new/f").read() == b"x\n"  # type: ignore[union-attr]
    dy("run", "-d", "--name", "running", IMAGE, "sh", "-c", "echo y > /live; sleep 1000", check=True)
    time.sleep(0.2)
    exported = subprocess.run([sys.executable, "-m", "dockyard", "export", "running"], env=dy.env,
                              capture_output=True, check=True).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        names = set(tar.getnames())
    assert "bin/busybox" in names and "proc" in names
    assert not any(n.startswith("proc/") for n in names)  # another filesystem: left empty


def test_save_load_round_trip_and_tag(dy: Dockyard, tmp_path: Path) -> None:
    seed(dy.root, "test/layered:1", [busybox_layer(), _layer_with_whiteout()])
    before = dy("run", "--rm", "test/layered:1", "sh", "-c", "ls /bin/vi /etc/motd 2>&1; cat /etc/added").stdout
    archive = tmp_path / "img.tar"
    dy("tag", "test/layered:1", "test/renamed:2", check=True)
    dy("save", "-o", str(archive), "test/layered:1", "test/renamed:2", check=True)
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        names = tar.getnames()
    assert [m["RepoTags"] for m in manifest] == [["test/layered:1"], ["test/renamed:2"]]
    assert {"index.json", "oci-layout", "repositories"} <= set(names)
    assert list((dy.root / "images" / "tmp").iterdir()) == []  # no work space left behind
    fresh = Dockyard(tmp_path / "other-root")
    r = fresh("load", "-i", str(archive), check=True)
    assert r.stdout == "Loaded image: test/layered:1\nLoaded image: test/renamed:2\n"
    after = fresh("run", "--rm", "test/renamed:2", "sh", "-c", "ls /bin/vi /etc/motd 2>&1; cat /etc/added").stdout
    assert after == before and "added-file" in after and "No such file" in after
    # a saved archive loads again to the same images: the re-made layers are reproducible
    again = tmp_path / "again.tar"
    fresh("save", "-o", str(again), "test/layered:1", check=True)
    ids = {fresh("images", "-q", "test/layered:1").stdout}
    fresh("load", "-i", str(again), check=True)
    assert list((fresh.root / "images" / "tmp").iterdir()) == []
    assert {fresh("images", "-q", "test/layered:1").stdout} == ids
    assert dy("load", "-i", str(tmp_path / "missing.tar")).returncode == 1
    (tmp_path / "junk.tar").write_bytes(b"not a tar")
    assert dy("load", "-i", str(tmp_path / "junk.tar")).returncode == 1


def _layer_with_whiteout() -> imagebuild.Layer:
    return imagebuild.layer(
        [imagebuild.whiteout("bin/vi"), imagebuild.file("etc/added", b"added-file\n")], compress=False
    )


def test_info_version_system_df_and_groups(dy: Dockyard) -> None:
    dy("run", "--name", "one", IMAGE, "true", check=True)
    info = dy("info", check=True).stdout
    assert " Containers: 1\n" in info and "  Stopped: 1\n" in info and " Images: 1\n" in info
    assert dy("info", "--format", "{{.Containers}} {{.Images}} {{.DockerRootDir}}").stdout == f"1 1 {dy.root}\n"
    assert dy("version", "--format", "{{.Client.Version}}", check=True).stdout.strip()
    df = _lines(dy("system", "df", check=True).stdout)
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].split()[:3] == ["Images", "1", "1"] and df[2].split()[:3] == ["Containers", "1", "0"]
    assert [line.split()[0] for line in df[1:]] == ["Images", "Containers", "Local", "Build"]
    assert dy("container", "ls", "-a", "-q", check=True).stdout.strip()
    assert dy("container", "inspect", "-f", "{{.Name}}", "one", check=True).stdout == "/one\n"
    dy("container", "rename", "one", "uno", check=True)
    dy("container", "rm", "uno", check=True)
    assert dy("container", "ls", "-a", "-q").stdout == ""
    dy("image", "tag", IMAGE, "test/again:1", check=True)
    assert "test/again" in dy("image", "ls", check=True).stdout
    dy("volume", "create", "v1", check=True)
    assert dy("volume", "ls", "-q").stdout == dy("volume", "list", "-q").stdout == "v1\n"
    dy("volume", "create", "used", check=True)
    dy("create", "--name", "holder", "-v", "used:/u", IMAGE, "true", check=True)
    assert dy("volume", "ls", "-q", "-f", "dangling=true").stdout == "v1\n"
    assert dy("volume", "ls", "--format", "{{.Name}} {{.Driver}}", "-f", "name=us").stdout == "used local\n"
    # `docker volume rm $(docker volume ls -q -f dangling=true)`, through a real shell
    cli = f"{sys.executable} -m dockyard"
    shell = subprocess.run(["sh", "-c", f"{cli} volume rm $({cli} volume ls -q -f dangling=true)"], env=dy.env,
                           capture_output=True, text=True)  # fmt: skip
    assert shell.returncode == 0 and shell.stdout == "v1\n", shell.stderr
    assert dy("volume", "ls").stdout == "DRIVER    VOLUME NAME\nlocal     used\n"
    dy("rm", "holder", check=True)
    assert json.loads(dy("volume", "inspect", "used", check=True).stdout)[0]["Name"] == "used"
    dy("volume", "rm", "used", check=True)


# --- published ports ---------------------------------------------------------------------------------------------


def test_random_host_port_shown_by_port_and_ps(dy: Dockyard) -> None:
    dy("run", "-d", "--name", "web", "-p", "80", IMAGE, "sh", "-c", HTTPD, check=True)
    line = dy("port", "web", check=True).stdout
    assert line.startswith("80/tcp -> 127.0.0.1:"), line
    host_port = int(line.strip().rpartition(":")[2])
    assert dy("port", "web", "80").stdout == f"127.0.0.1:{host_port}\n"
    assert dy("port", "web", "80/tcp").stdout == f"127.0.0.1:{host_port}\n"
    assert _get(f"http://127.0.0.1:{host_port}/") == "hello-from-dockyard\n"
    assert dy("ps", "--format", "{{.Ports}}").stdout == f"127.0.0.1:{host_port}->80/tcp\n"
    r = dy("port", "web", "81")
    assert r.returncode == 1 and "No public port '81/tcp' published for web" in r.stderr


def test_publish_all_and_ranges(dy: Dockyard) -> None:
    seed(dy.root, "test/exposes:1", [busybox_layer([])], {"ExposedPorts": {"80/tcp": {}, "81/tcp": {}}})
    dy("run", "-d", "--name", "all", "-P", "test/exposes:1", "sh", "-c", HTTPD, check=True)
    mapped = dict(line.split(" -> ") for line in _lines(dy("port", "all", check=True).stdout))
    assert set(mapped) == {"80/tcp", "81/tcp"}
    assert _get(f"http://{mapped['80/tcp']}/") == "hello-from-dockyard\n"
    base = _two_free_ports()
    two_servers = "mkdir /www && echo hello-from-dockyard > /www/index.html && httpd -p 81 -h /www && " + (
        "exec httpd -f -p 80 -h /www"
    )
    dy("run", "-d", "--name", "range", "-p", f"{base}-{base + 1}:80-81", IMAGE, "sh", "-c", two_servers, check=True)
    assert _get(f"http://127.0.0.1:{base}/") == "hello-from-dockyard\n"
    assert _get(f"http://127.0.0.1:{base + 1}/") == "hello-from-dockyard\n"
    ports = dy("ps", "-f", "name=range", "--format", "{{.Ports}}").stdout
    assert ports == f"127.0.0.1:{base}->80/tcp, 127.0.0.1:{base + 1}->81/tcp\n"


def _two_free_ports() -> int:
    for _ in range(100):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
            return int(base)
    raise AssertionError("no two consecutive free ports")


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 5353))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(b"echo:" + data, peer)
"""


def test_udp_is_forwarded(dy: Dockyard) -> None:
    nsenter = require_tool("nsenter")
    dy("run", "-d", "--name", "dns", "-p", "127.0.0.1::5353/udp", IMAGE, "sleep", "1000", check=True)
    pid = dy("inspect", "-f", "{{.State.Pid}}", "dns", check=True).stdout.strip()
    # The server runs in the container's network namespace (busybox has no UDP server).
    server = subprocess.Popen([nsenter, "-t", pid, "-n", sys.executable, "-c", UDP_ECHO], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        host_port = int(dy("port", "dns", "5353/udp", check=True).stdout.strip().rpartition(":")[2])
        replies = []
        for client_number in range(2):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(10)
                for i in range(3):
                    client.sendto(f"c{client_number}-{i}".encode(), ("127.0.0.1", host_port))
                    replies.append(client.recvfrom(100)[0])
        assert replies == [f"echo:c{c}-{i}".encode() for c in range(2) for i in range(3)]
        assert dy("ps", "--format", "{{.Ports}}").stdout == f"127.0.0.1:{host_port}->5353/udp\n"
    finally:
        server.kill()
        server.wait()


def test_load_of_a_docker_25_archive_with_gzip_layers(dy: Dockyard, tmp_path: Path) -> None:
    """The layout Docker 25+ writes: an OCI image layout whose index names the image, plus
    manifest.json pointing into blobs/; here with gzip layers, as a containerd store keeps them."""
    layers = [imagebuild.layer(imagebuild.busybox_entries()), imagebuild.layer([imagebuild.file("etc/hi", b"hi\n")])]
    layout = tmp_path / "layout"
    image = imagebuild.write_layout(layout, imagebuild.ImageSpec(layers, {"Cmd": ["cat", "/etc/hi"]}), tag="v1")
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["annotations"] = {"io.containerd.image.name": "docker.io/test/oci:v1",
                                           "org.opencontainers.image.ref.name": "v1"}  # fmt: skip
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "manifest.json").write_text(json.dumps([{
        "Config": "blobs/sha256/" + image.id.partition(":")[2],
        "RepoTags": ["test/oci:v1"],
        "Layers": ["blobs/sha256/" + layer.digest.partition(":")[2] for layer in layers],
    }]))  # fmt: skip
    archive = tmp_path / "oci.tar"
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(layout.rglob("*")):
            tar.add(entry, str(entry.relative_to(layout)), recursive=False)
    assert dy("load", "-i", str(archive), check=True).stdout == "Loaded image: test/oci:v1\n"
    assert dy("run", "--rm", "test/oci:v1").stdout == "hi\n"
    inspected = json.loads(dy("inspect", "test/oci:v1", check=True).stdout)[0]
    assert inspected["Id"] == image.id and inspected["ManifestDigest"] == image.manifest_digest
    # a layer that does not match its diff id is refused, and nothing is tagged
    (layout / "manifest.json").write_text(json.dumps([{
        "Config": "blobs/sha256/" + image.id.partition(":")[2], "RepoTags": ["test/bad:v1"],
        "Layers": ["blobs/sha256/" + layers[1].digest.partition(":")[2]] * 2,
    }]))  # fmt: skip
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        for entry in sorted(layout.rglob("*")):
            tar.add(entry, str(entry.relative_to(layout)), recursive=False)
    r = dy("load", "-i", str(bad))
    assert r.returncode == 1 and "invalid diffID" in r.stderr
    assert dy("images", "-q", "test/bad:v1").stdout == ""
