"""Pure parts of the runtime, no root needed: mount planning, overlay options, Docker's rules for
command, environment and user, flag parsing, validation and the spec's round trip."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from runtime import rootfs, syscalls
from runtime.cgroups import Resources
from runtime.commands.run import add_run_arguments, parse_bytes, parse_mount, parse_volume
from runtime.imageconfig import DEFAULT_PATH, ConfigError, command, environment, parse_env_file
from runtime.ports import PublishedPort, display_ports, parse_publish
from runtime.spec import ContainerSpec, Mount, PortMapping, ProcessSpec
from runtime.users import UserError, read_from_layers, resolve_user
from runtime.validate import validate
from runtime.volumes import VolumeError, VolumeStore


def _spec(**changes: object) -> ContainerSpec:
    base: dict[str, object] = {
        "id": "a" * 64,
        "name": "c1",
        "image": "img",
        "image_id": "sha256:" + "b" * 64,
        "layers": ("/l1", "/l2"),
        "process": ProcessSpec(("sh",)),
        "hostname": "aaaaaaaaaaaa",
    }
    base.update(changes)
    return ContainerSpec(**base)  # type: ignore[arg-type]


# --- mounts -----------------------------------------------------------------------------------------------


def test_plan_mounts_order_and_contents() -> None:
    spec = _spec(mounts=(Mount("/host/deep", "/a/b/c"), Mount("/host/top", "/a", readonly=True)))
    steps = rootfs.plan_mounts(spec, {"/etc/hostname": "/state/hostname"})
    targets = [s.target for s in steps]
    assert targets[:2] == ["/proc", "/dev"]
    assert targets.index("/dev") < targets.index("/dev/null") < targets.index("/dev/pts")
    sysfs = next(s for s in steps if s.target == "/sys")
    assert sysfs.flags & syscalls.MS_RDONLY
    # Parents are mounted before their children, whatever the flag order.
    assert targets.index("/a") < targets.index("/a/b/c")
    assert next(s for s in steps if s.target == "/a").readonly
    assert next(s for s in steps if s.target == "/etc/hostname").source == "/state/hostname"
    # Masks and read-only /proc entries come last, over everything else.
    assert [s.target for s in steps if s.op == "mask"] == list(rootfs.MASKED_PATHS)
    assert [s.target for s in steps if s.op == "readonly"] == list(rootfs.READONLY_PATHS)
    assert max(i for i, s in enumerate(steps) if s.op == "bind") < min(i for i, s in enumerate(steps) if s.op == "mask")
    ptmx = next(s for s in steps if s.target == "/dev/ptmx")
    assert (ptmx.op, ptmx.source) == ("symlink", "pts/ptmx")


def test_masked_paths_match_docker() -> None:
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware"):
        assert path in rootfs.MASKED_PATHS
    assert set(rootfs.READONLY_PATHS) == {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}


def test_overlay_options_top_layer_first_and_escaped() -> None:
    options = rootfs.overlay_options(["/l/bottom", "/l/mid,x", "/l/top:y"], "/c/upper", "/c/work")
    assert options == r"lowerdir=/l/top\:y:/l/mid\,x:/l/bottom,upperdir=/c/upper,workdir=/c/work"


def test_resolve_in_root_keeps_symlinks_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "etc").symlink_to("/real")
    (root / "escape").symlink_to("../../../..")
    assert rootfs.resolve_in_root(root, "/etc/x") == root / "real" / "x"
    # A link climbing out of the root stops at the root, as it would after chroot.
    assert rootfs.resolve_in_root(root, "/escape") == root
    assert rootfs.resolve_in_root(root, "/escape/etc/passwd") == root / "real" / "passwd"


# --- image config rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "args", "entrypoint", "expected"),
    [
        ({"Cmd": ["sh"]}, [], None, ["sh"]),
        ({"Cmd": ["sh"]}, ["echo", "hi"], None, ["echo", "hi"]),
        ({"Entrypoint": ["/bin/echo"], "Cmd": ["default"]}, [], None, ["/bin/echo", "default"]),
        ({"Entrypoint": ["/bin/echo"], "Cmd": ["default"]}, ["given"], None, ["/bin/echo", "given"]),
        # --entrypoint drops the image's Cmd too, as Docker does.
        ({"Entrypoint": ["/bin/echo"], "Cmd": ["default"]}, [], "ls", ["ls"]),
        ({"Entrypoint": ["/bin/echo"], "Cmd": ["default"]}, ["-l"], "ls", ["ls", "-l"]),
        ({"Entrypoint": ["/bin/sh", "-c", "echo $0"], "Cmd": None}, ["x"], None, ["/bin/sh", "-c", "echo $0", "x"]),
        ({"Entrypoint": ["/bin/echo"]}, ["a"], "", ["a"]),
    ],
)
def test_command(config: dict[str, object], args: list[str], entrypoint: str | None, expected: list[str]) -> None:
    assert command(config, args, entrypoint) == expected


def test_command_missing() -> None:
    with pytest.raises(ConfigError):
        command({}, [], None)


def test_environment_order_and_overrides() -> None:
    env = environment(
        {"Env": ["PATH=/custom", "A=image", "B=image"]},
        ["B=flag", "C", "D", "E="],
        "h",
        "/root",
        True,
        host_env={"C": "from-host"},
    )
    assert env == ["PATH=/custom", "HOSTNAME=h", "TERM=xterm", "A=image", "B=flag", "C=from-host", "E=", "HOME=/root"]
    assert environment({}, [], "h", "/", False, host_env={})[0] == f"PATH={DEFAULT_PATH}"
    assert "HOME=/x" in environment({"Env": ["HOME=/x"]}, [], "h", "/root", False, host_env={})


def test_env_file() -> None:
    assert parse_env_file("# c\n\nA=1\n  B=2 \nC\n") == ["A=1", "B=2", "C"]


# --- users --------------------------------------------------------------------------------------------------

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\nstaff:x:50:\n"


def _files(path: str) -> str | None:
    return {"/etc/passwd": PASSWD, "/etc/group": GROUP}.get(path)


@pytest.mark.parametrize(
    ("user", "uid", "gid", "groups", "home"),
    [
        ("", 0, 0, (0, 10), "/root"),
        ("app", 1000, 1000, (1000, 10), "/home/app"),
        ("1000", 1000, 1000, (1000, 10), "/home/app"),
        ("4242", 4242, 0, (0,), "/"),
        ("app:staff", 1000, 50, (50,), "/home/app"),
        ("app:77", 1000, 77, (77,), "/home/app"),
        ("5:6", 5, 6, (6,), "/"),
    ],
)
def test_resolve_user(user: str, uid: int, gid: int, groups: tuple[int, ...], home: str) -> None:
    info = resolve_user(user, _files)
    assert (info.uid, info.gid, info.groups, info.home) == (uid, gid, groups, home)


def test_resolve_user_unknown() -> None:
    with pytest.raises(UserError, match="unable to find user nobody"):
        resolve_user("nobody", _files)
    with pytest.raises(UserError, match="unable to find group nogroup"):
        resolve_user("app:nogroup", _files)


def test_read_from_layers_honours_whiteouts(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    (lower / "etc/passwd").write_text("lower")
    (lower / "etc/group").write_text("lower")
    (upper / "etc/group").write_text("upper")
    read = read_from_layers([lower, upper])
    assert read("/etc/passwd") == "lower"
    assert read("/etc/group") == "upper"
    assert read("/etc/shadow") is None


# --- flags --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8080:80", [PortMapping("127.0.0.1", 8080, 80)]),
        ("0.0.0.0:8080:80", [PortMapping("0.0.0.0", 8080, 80)]),
        ("127.0.0.2:81:80/tcp", [PortMapping("127.0.0.2", 81, 80)]),
        ("[::1]:8080:80", [PortMapping("::1", 8080, 80)]),
        (":8080:80", [PortMapping("127.0.0.1", 8080, 80)]),
        ("80", [PortMapping("127.0.0.1", 0, 80)]),
        ("127.0.0.3::80/udp", [PortMapping("127.0.0.3", 0, 80, "udp")]),
        ("8000-8001:80-81", [PortMapping("127.0.0.1", 8000, 80), PortMapping("127.0.0.1", 8001, 81)]),
        ("90-91/udp", [PortMapping("127.0.0.1", 0, 90, "udp"), PortMapping("127.0.0.1", 0, 91, "udp")]),
    ],
)
def test_parse_publish(value: str, expected: list[PortMapping]) -> None:
    assert parse_publish(value) == expected


@pytest.mark.parametrize("value", ["a:b", "1:2:3:4", "70000:80", "8080:80/sctp", "8000-8002:80-81", "9-8:80"])
def test_parse_publish_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_publish(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100m", 100 << 20),
        ("32M", 32 << 20),
        ("1g", 1 << 30),
        ("512k", 512 << 10),
        ("4096", 4096),
        ("1.5g", 3 << 29),
        ("64mb", 64 << 20),
    ],
)
def test_parse_bytes(value: str, expected: int) -> None:
    assert parse_bytes(value) == expected


def test_parse_volume_and_mount(tmp_path: Path) -> None:
    volumes = VolumeStore(tmp_path / "root")
    host = tmp_path / "h"
    bind = parse_volume(f"{host}:/data:ro", volumes)
    assert (bind.source, bind.target, bind.readonly, bind.kind) == (str(host), "/data", True, "bind")
    assert host.is_dir()  # created, as Docker does for -v
    named = parse_volume("cache:/var/cache", volumes)
    assert named.kind == "volume" and named.volume == "cache" and Path(named.source).is_dir()
    assert named.source == str(tmp_path / "root/volumes/cache/_data")
    m = parse_mount(f"type=bind,source={host},target=/x,readonly", volumes)
    assert m.readonly and m.target == "/x"
    with pytest.raises(ValueError, match="does not exist"):
        parse_mount(f"type=bind,source={tmp_path}/missing,target=/x", volumes)
    with pytest.raises(ValueError, match="empty section between colons"):
        parse_volume(":/data", volumes)
    anonymous = parse_volume("/anon", volumes)
    assert anonymous.kind == "volume" and anonymous.target == "/anon" and len(anonymous.volume) == 64
    assert volumes.is_anonymous(anonymous.volume) and not volumes.is_anonymous("cache")
    with pytest.raises(ValueError, match="create x: volume name is too short"):
        parse_volume("x:/data", volumes)
    with pytest.raises(ValueError, match='create rel/dir: "rel/dir" includes invalid characters'):
        parse_volume("rel/dir:/data", volumes)
    with pytest.raises(VolumeError):
        volumes.create("../evil")


def test_run_flags_parse_like_docker() -> None:
    p = argparse.ArgumentParser(add_help=False)
    add_run_arguments(p)
    args = p.parse_args(["-it", "--rm", "-e", "A=1", "-p", "8080:80", "-h", "host", "img", "sh", "-c", "ls -l"])
    assert (args.interactive, args.tty, args.rm, args.hostname, args.image) == (True, True, True, "host", "img")
    assert args.cmd == ["sh", "-c", "ls -l"]
    # Flags after the image belong to the command.
    assert p.parse_args(["img", "ls", "-d"]).cmd == ["ls", "-d"]


# --- validation and the spec --------------------------------------------------------------------------------


def test_validate() -> None:
    assert validate(_spec()) == []
    problems = validate(
        _spec(
            name="bad name",
            mounts=(Mount("/h", "relative"), Mount("/h", "/d"), Mount("/h", "/d/")),
            resources=Resources(memory=1024),
            process=ProcessSpec(("sh",), cwd="rel"),
            ports=(PortMapping("127.0.0.1", 1, 1), PortMapping("127.0.0.1", 1, 2)),
        )
    )
    text = "\n".join(problems)
    for expected in (
        "Invalid container name",
        "invalid mount target",
        "Duplicate mount point: /d",
        "Minimum memory limit",
        "absolute path",
        "port is already allocated",
    ):
        assert expected in text
    assert validate(_spec(network="none", ports=(PortMapping("127.0.0.1", 1, 1),)))


def test_spec_round_trip() -> None:
    spec = _spec(
        mounts=(Mount("/h", "/d", True),),
        ports=(PortMapping("0.0.0.0", 8080, 80),),
        resources=Resources.from_cpus(0.5, memory=1 << 30, pids=10),
        init=True,
        process=ProcessSpec(("a", "b"), ("X=1",), "/w", 1, 2, (2, 3), True, True),
    )
    assert ContainerSpec.from_dict(spec.to_dict()) == spec
    assert Resources.from_cpus(0.2).cpu_quota == 20000


def test_without_root_one_clear_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from dockyard.__main__ import main

    monkeypatch.setattr("os.geteuid", lambda: 1000)
    for argv in (["run", "img"], ["ps"], ["exec", "c", "ls"], ["volume", "ls"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "needs root on Linux" in err


def test_human_durations_and_ps_commands_as_docker_prints_them() -> None:
    from runtime.commands.humanize import go_quote, human_duration, ps_command

    cases = [(0.4, "Less than a second"), (1, "1 second"), (13, "13 seconds"), (61, "About a minute")]
    cases += [(300, "5 minutes"), (3500, "58 minutes"), (3600, "About an hour"), (5 * 3600, "5 hours")]
    cases += [(3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years")]
    assert [human_duration(s) for s, _ in cases] == [text for _, text in cases]
    assert ps_command(("sh", "-c", "echo a  b"), truncate=False) == "\"sh -c 'echo a  b'\""
    assert ps_command(("echo", 'x"y', "it's"), truncate=False) == '"echo x\\"y it\'s"'
    assert ps_command(("sleep", "1000000000000000000000"), truncate=True) == '"sleep 1000000000000…"'
    assert go_quote("tab\there\x01") == '"tab\\there\\x01"'


def test_new_spec_fields_round_trip() -> None:
    from runtime.spec import RestartPolicy, Rlimit, Tmpfs

    spec = _spec(
        process=ProcessSpec(("a",), rlimits=(Rlimit("nofile", 10, 20),)),
        extra_hosts=("a:1.2.3.4",),
        dns=("9.9.9.9",),
        dns_search=("x.org",),
        dns_options=("ndots:2",),
        tmpfs=(Tmpfs("/run", "size=1m"),),
        restart=RestartPolicy("on-failure", 3),
    )
    assert ContainerSpec.from_dict(spec.to_dict()) == spec
    assert ContainerSpec.from_dict({k: v for k, v in _spec().to_dict().items() if k != "restart"}).restart.name == "no"


def test_resolv_conf_and_hosts_as_docker_writes_them() -> None:
    from runtime.etcfiles import DEFAULT_HOSTS, hosts_file, resolv_conf

    host = "# managed\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n"
    private = _spec()
    assert resolv_conf(private, host) == "# managed\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n"
    assert resolv_conf(private, "nameserver 127.0.0.1\n") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert resolv_conf(_spec(network="host"), host) == host
    dns = _spec(dns=("1.1.1.1",), dns_options=("ndots:5",))
    assert resolv_conf(dns, host) == "search corp\nnameserver 1.1.1.1\noptions ndots:5\n"
    search = _spec(dns_search=("a.org", "b.org"))
    assert resolv_conf(search, host) == "search a.org b.org\nnameserver 10.0.0.2\noptions edns0\n"
    extra = ("db:10.1.1.1", "v6=fe80::1")
    ours = hosts_file(_spec(extra_hosts=extra, hostname="h"), "ignored")
    assert ours == DEFAULT_HOSTS + "10.1.1.1\tdb\nfe80::1\tv6\n127.0.1.1\th\n"
    assert hosts_file(_spec(network="host", extra_hosts=extra[:1]), "1.1.1.1 me") == "1.1.1.1 me\n10.1.1.1\tdb\n"


def test_systemd_resolved_stub_gives_way_to_its_upstream_list(tmp_path: Path) -> None:
    from runtime.etcfiles import host_resolv_conf

    stub, upstream = tmp_path / "resolv.conf", tmp_path / "upstream.conf"
    stub.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    upstream.write_text("nameserver 192.0.2.1\n")
    assert host_resolv_conf(stub, upstream) == "nameserver 192.0.2.1\n"
    assert host_resolv_conf(stub, tmp_path / "absent") == stub.read_text()
    assert host_resolv_conf(tmp_path / "none", upstream) == ""


def test_restart_policies_and_backoff() -> None:
    from runtime.commands.runflags import parse_restart
    from runtime.containers import State
    from runtime.restart import Backoff, should_restart

    on_failure = parse_restart("on-failure:2")
    assert (on_failure.name, on_failure.max_retries) == ("on-failure", 2)
    assert should_restart(on_failure, State(restart_count=1), 1)
    assert not should_restart(on_failure, State(restart_count=2), 1)
    assert not should_restart(on_failure, State(), 0)
    assert should_restart(parse_restart("always"), State(), 0)
    assert not should_restart(parse_restart("unless-stopped"), State(manually_stopped=True), 1)
    assert not should_restart(parse_restart("no"), State(), 1)
    backoff = Backoff()
    assert [backoff.next(0.1) for _ in range(4)] == [0.1, 0.2, 0.4, 0.8]
    assert backoff.next(30) == 0.1
    for _ in range(20):
        backoff.next(0)
    assert backoff.delay == 60


def test_tmpfs_options_and_detach_keys() -> None:
    from runtime.attach import parse_detach_keys

    step = rootfs.tmpfs_step("/t", "size=1m,exec,ro,mode=700")
    assert step.flags == syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_RDONLY
    assert step.data == "size=1m,mode=700"
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-@,ctrl-\\,a") == b"\x00\x1ca"
    with pytest.raises(ValueError, match=r"Invalid detach keys \(ctrl-1\) provided"):
        parse_detach_keys("ctrl-1")


def test_display_ports_groups_like_docker() -> None:
    ports = [
        PublishedPort(81, "tcp", "127.0.0.1", 81),
        PublishedPort(80, "tcp", "127.0.0.1", 80),
        PublishedPort(53, "udp", "127.0.0.1", 40000),
        PublishedPort(443, "tcp"),
    ]
    assert display_ports(ports) == "127.0.0.1:80-81->80-81/tcp, 443/tcp, 127.0.0.1:40000->53/udp"


def test_logs_since_accepts_docker_forms() -> None:
    from runtime.commands.logs import parse_since

    now = 1_700_000_000.0
    assert parse_since("10m", now) == now - 600
    assert parse_since("1h30m", now) == now - 5400
    assert parse_since("1699999999.5", now) == 1699999999.5
    assert parse_since("2023-11-14T22:13:20Z", now) == now
    assert parse_since("2023-11-14", now) == now - (22 * 3600 + 13 * 60 + 20)
    with pytest.raises(ValueError):
        parse_since("yesterday", now)


def test_human_duration_is_go_units() -> None:
    from runtime.commands.humanize import human_duration

    cases = [(0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
             (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
             (2 * 3600, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (15 * 86400, "2 weeks"),
             (61 * 86400, "2 months"), (800 * 86400, "2 years")]  # fmt: skip
    assert [human_duration(s) for s, _ in cases] == [text for _, text in cases]
