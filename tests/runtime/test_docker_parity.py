"""Where the Docker engine runs: the same image under `docker run` and `dockyard run` prints the
same thing for the Entrypoint/Cmd/Env/WorkingDir/User cases (issue 5, point 1). The image is built
by `docker build` FROM scratch with a static busybox, pushed to a Dockyard, pulled by the runtime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.security import CAPABILITIES
from tests.conftest import require_busybox, require_tool
from tests.runtime.conftest import Dockyard
from tests.servers import DockerEngine, RegistryProcess, start_dockerd, start_registry

pytestmark = [pytest.mark.privileged, pytest.mark.e2e]

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534::/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\nwheel:x:10:root\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n"
SHOW = 'echo "args:$*"; pwd; id; echo "$FOO|$BAR|$HOME|$PATH"; env | grep -v ^HOSTNAME= | sort'

DOCKERFILES = {
    "exec": f"""FROM scratch
COPY rootfs/ /
ENV FOO=foo BAR="bar baz"
WORKDIR /work/dir
USER app
ENTRYPOINT {json.dumps(["/bin/sh", "-c", SHOW, "sh"])}
CMD ["default-arg"]
""",
    "shell": """FROM scratch
COPY rootfs/ /
ENV FOO=shellform
CMD echo "shell form: $FOO $0" && id && pwd
""",
}

CASES = [
    ("exec", [], []),
    ("exec", [], ["one", "two words"]),
    ("exec", ["--entrypoint", "/bin/sh"], ["-c", "echo $FOO; id; pwd"]),
    ("exec", ["-u", "0"], []),
    ("exec", ["-u", "root:staff"], []),
    ("exec", ["-u", "4321"], []),
    ("exec", ["-w", "/tmp"], []),
    ("exec", ["-e", "FOO=override", "-e", "NEW=1"], []),
    ("shell", [], []),
    ("shell", [], ["echo", "replaced"]),
    ("shell", ["--entrypoint", "echo"], ["ep", "override"]),
]


def _context(tmp: Path, dockerfile: str) -> Path:
    ctx = tmp / "ctx"
    root = ctx / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(require_busybox(), root / "bin/busybox")
    for applet in ("sh", "echo", "id", "pwd", "env", "sort", "grep", "ls", "cat", "unshare", "mount", "mkdir"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "home/app").mkdir(parents=True)
    (root / "tmp").mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    require_tool("dockerd")
    require_tool("docker")
    e = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    yield e
    e.stop()


@pytest.fixture(scope="module")
def images(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    registry: RegistryProcess = start_registry(tmp_path_factory.mktemp("registry") / "data")
    refs = {}
    try:
        for name, dockerfile in DOCKERFILES.items():
            ref = f"{registry.address}/parity/{name}:1"
            ctx = _context(tmp_path_factory.mktemp(name), dockerfile)
            engine.docker("build", "-q", "-t", ref, str(ctx))
            engine.docker("push", ref)
            refs[name] = ref
        yield refs
    finally:
        registry.stop()


@pytest.mark.parametrize(("image", "flags", "args"), CASES, ids=[" ".join([c[0], *c[1], *c[2]]) for c in CASES])
def test_same_stdout_as_docker(
    engine: DockerEngine, images: dict[str, str], dy: Dockyard, image: str, flags: list[str], args: list[str]
) -> None:
    ref = images[image]
    expected = engine.docker("run", "--rm", *flags, ref, *args, check=False)
    assert expected.stdout, expected.stderr
    ours = dy("run", "--rm", *flags, ref, *args)
    assert (ours.stdout, ours.returncode) == (expected.stdout, expected.returncode), ours.stderr


# Security defaults (issue 11): the same capabilities, no_new_privs, seccomp mode and refusals.
SECURITY_PROBE = (
    "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
    "unshare -U true 2>/dev/null; echo unshare=$?; mkdir -p /mnt; mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?"
)
SECURITY_CASES = [
    [],
    ["--cap-drop", "ALL"],
    ["--cap-drop", "ALL", "--cap-add", "net_raw"],
    ["--cap-drop", "chown", "--cap-add", "CAP_NET_ADMIN"],
    ["--cap-add", "SYS_ADMIN"],
    ["--security-opt", "seccomp=unconfined"],
    ["--security-opt", "no-new-privileges"],
    ["-u", "nobody"],
    ["--privileged"],
]


def _cap_lines(probe: str) -> dict[str, int]:
    return {k: int(v, 16) for k, _, v in (line.partition(":\t") for line in probe.splitlines()) if k.startswith("Cap")}


def _without_caps(probe: str) -> list[str]:
    return [line for line in probe.splitlines() if not line.startswith("Cap")]


def _bounding_set() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("CapBnd:")).split()[1], 16)


def _withheld_capabilities() -> list[str]:
    """The capabilities this kernel knows that are outside the test process's bounding set."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    bounding = _bounding_set()
    withheld = [name for name, bit in CAPABILITIES.items() if bit <= last and not bounding & (1 << bit)]
    assert withheld, "docker --privileged failed though the bounding set is full"
    return withheld


@pytest.mark.parametrize("flags", SECURITY_CASES, ids=[" ".join(c) or "defaults" for c in SECURITY_CASES])
def test_same_security_as_docker(engine: DockerEngine, images: dict[str, str], dy: Dockyard, flags: list[str]) -> None:
    ref = images["shell"]
    expected = engine.docker("run", "--rm", *flags, "--entrypoint", "/bin/sh", ref, "-c", SECURITY_PROBE, check=False)
    privileged_works = "unable to apply caps" not in expected.stderr
    if "--privileged" in flags and not privileged_works:
        # runc's --privileged asks for every capability the kernel knows and fails when the host's
        # bounding set withholds one (a sandbox without CAP_SYS_RESOURCE). Dockyard grants what the
        # host allows, so compare with Docker's nearest run: all capabilities minus the withheld
        # ones, no seccomp filter.
        docker_flags = ["--cap-add", "ALL", "--security-opt", "seccomp=unconfined"]
        for name in _withheld_capabilities():
            docker_flags += ["--cap-drop", name]
        expected = engine.docker(
            "run", "--rm", *docker_flags, "--entrypoint", "/bin/sh", ref, "-c", SECURITY_PROBE, check=False
        )
    assert "Seccomp:" in expected.stdout, expected.stderr
    ours = dy("run", "--rm", *flags, "--entrypoint", "/bin/sh", ref, "-c", SECURITY_PROBE)
    if "--privileged" in flags and not privileged_works:
        # The runc here also leaves out capabilities newer than the ones it knows (CAP_PERFMON and
        # later); --privileged means every capability the host allows, so ours is the host's full
        # bounding set and a superset of that run's, and the rest of the probe is identical.
        ours_caps, docker_caps = _cap_lines(ours.stdout), _cap_lines(expected.stdout)
        assert ours_caps == {"CapEff": _bounding_set(), "CapBnd": _bounding_set()}, ours.stdout
        assert all(docker_caps[k] & ~ours_caps[k] == 0 for k in ours_caps), (ours.stdout, expected.stdout)
        assert _without_caps(ours.stdout) == _without_caps(expected.stdout), ours.stderr
        return
    assert ours.stdout == expected.stdout, ours.stderr


def test_same_seccomp_profile_file_as_docker(
    engine: DockerEngine, images: dict[str, str], dy: Dockyard, tmp_path: Path
) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                ],
            }
        )
    )
    flags = ["--security-opt", f"seccomp={profile}", "--entrypoint", "/bin/sh", images["shell"], "-c", SECURITY_PROBE]
    expected = engine.docker("run", "--rm", *flags, check=False)
    assert "Seccomp:" in expected.stdout, expected.stderr
    assert dy("run", "--rm", *flags).stdout == expected.stdout


# --- everyday commands (issue 11, section 3): the same output as `docker` for the same image ----------------------

LABELLED = """FROM scratch
COPY rootfs/ /
LABEL com.example.role=web tier="front end"
EXPOSE 8080 9090/udp
WORKDIR /tmp
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo labelled"]
"""
# A layer that deletes a file of the one below: a whiteout, which save/load must carry both ways.
LAYERED = """FROM scratch
COPY rootfs/ /
RUN rm /bin/grep && mkdir /made && echo made-in-a-layer > /made/file
CMD ["/bin/sh", "-c", "ls /bin/grep 2>&1; cat /made/file"]
"""


@pytest.fixture(scope="module")
def everyday(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    registry: RegistryProcess = start_registry(tmp_path_factory.mktemp("registry-everyday") / "data")
    refs = {}
    try:
        for name, dockerfile in (("labelled", LABELLED), ("layered", LAYERED)):
            ref = f"{registry.address}/parity/{name}:1"
            ctx = _context(tmp_path_factory.mktemp(name), dockerfile)
            engine.docker("build", "-q", "-t", ref, str(ctx))
            engine.docker("push", ref)
            refs[name] = ref
        yield refs
    finally:
        registry.stop()


class Both:
    """The same command line against Docker and against Dockyard."""

    def __init__(self, engine: DockerEngine, dy: Dockyard) -> None:
        self.engine, self.dy = engine, dy
        self.names: list[str] = []

    def __call__(self, *args: str) -> tuple[tuple[str, str, int], tuple[str, str, int]]:
        theirs = self.engine.docker(*args, check=False)
        ours = self.dy(*args)
        return (theirs.stdout, theirs.stderr, theirs.returncode), (ours.stdout, ours.stderr, ours.returncode)

    def same(self, *args: str) -> str:
        theirs, ours = self(*args)
        assert (ours[0], ours[2]) == (theirs[0], theirs[2]), f"{args}: docker {theirs} dockyard {ours}"
        return theirs[0]

    def run(self, *args: str) -> None:
        # --network none: the test engine has no bridge; the runtime's private network is the same loopback only.
        theirs = self.engine.docker("run", "--network", "none", *args, check=False)
        ours = self.dy("run", *args)
        assert ours.returncode == theirs.returncode, (theirs.stderr, ours.stderr)

    def cleanup(self) -> None:
        ids = self.engine.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            self.engine.docker("rm", "-f", *ids, check=False)


@pytest.fixture
def both(engine: DockerEngine, dy: Dockyard) -> Iterator[Both]:
    b = Both(engine, dy)
    yield b
    b.cleanup()


def test_ps_filters_and_format_match_docker(both: Both, everyday: dict[str, str], images: dict[str, str]) -> None:
    labelled, plain = everyday["labelled"], images["exec"]
    both.run("--name", "web1", "-l", "team=a", labelled, "true")
    both.run("--name", "web2", "-l", "team=b", labelled, "false")
    both.run("--name", "other", plain)
    both.run("-d", "-i", "--name", "sleeper", "--entrypoint", "/bin/sh", plain, "-c", "read x")
    both.dy("create", "--name", "fresh", labelled)
    both.engine.docker("create", "--network", "none", "--name", "fresh", labelled)
    table = "table {{.Names}}\\t{{.Image}}\\t{{.Command}}\\t{{.State}}"
    for filters in (
        [],
        ["-f", "status=exited"],
        ["-f", "status=created"],
        ["-f", "status=running"],
        ["-f", "status=exited", "-f", "status=created"],
        ["-f", "exited=1"],
        ["-f", "exited=0"],
        ["-f", "name=web"],
        ["-f", "name=^/web1$"],
        ["-f", "label=team"],
        ["-f", "label=team=b"],
        ["-f", "label=com.example.role=web"],
        ["-f", f"ancestor={labelled}"],
        ["-f", "status=exited", "-f", "label=tier=front end"],
    ):
        # (not .Labels: Docker joins them in Go's random map order)
        both.same("ps", "-a", *filters, "--format", '{{.Names}}|{{.State}}|{{.Label "team"}}')
        both.same("ps", "-a", *filters, "--format", table)
    both.same("ps", "--format", "{{.Names}} {{.Command}}")
    both.same("ps", "-f", "status=exited", "--format", "{{.Names}}")  # status= implies -a
    both.same("ps", "-a", "--format", '{{.Names}}={{.Label "team"}}')
    theirs, ours = both("ps", "-a", "-q", "-f", "status=exited")
    assert len(ours[0].split()) == len(theirs[0].split()) == 3
    both.same("ps", "-a", "--no-trunc", "--format", "{{.Command}}")
    both.run("--name", "sized", "--entrypoint", "/bin/sh", plain, "-c", "echo 123456789 > /tmp/ten")
    both.same("ps", "-a", "-s", "-f", "name=sized", "--format", "{{.Names}} {{.Size}}")
    for bad in ("nosuch=1", "status=sleeping"):
        theirs, ours = both("ps", "-f", bad)
        assert (ours[1], ours[2]) == (theirs[1], theirs[2])
    # the default table: same header, same columns for the parts that do not depend on time or ids
    theirs, ours = both("ps", "-a")
    assert ours[0].splitlines()[0].split("  ")[0] == theirs[0].splitlines()[0].split("  ")[0] == "CONTAINER ID"
    assert ours[0].splitlines()[0].split() == theirs[0].splitlines()[0].split()


def test_rm_of_exited_word_for_word_like_docker(both: Both, images: dict[str, str]) -> None:
    plain = images["exec"]
    for name in ("one", "two"):
        both.run("--name", name, plain)
    for cli, env in (("docker", both.engine.env), (f"{sys.executable} -m dockyard", both.dy.env)):
        shell = subprocess.run(["sh", "-c", f"{cli} rm $({cli} ps -a -q -f status=exited)"], env=env,
                               capture_output=True, text=True)  # fmt: skip
        assert shell.returncode == 0, shell.stderr
        assert len(shell.stdout.split()) == 2
    theirs, ours = both("ps", "-a", "-q")
    assert ours[0] == theirs[0] == ""


INSPECT_TEMPLATES = [
    "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}}",
    "{{.Name}} {{.Path}} {{json .Args}}",
    "{{json .Config.Cmd}} {{json .Config.Entrypoint}}",
    "{{json .Config.Labels}}",
    '{{index .Config.Labels "tier"}}',
    "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
    "{{json .Config.ExposedPorts}}",
    "{{.Config.WorkingDir}}|{{.Config.User}}|{{.Config.Tty}}|{{.Config.OpenStdin}}",
    "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}} {{.Name}};{{end}}",
    "{{len .Mounts}}",
    "{{.HostConfig.AutoRemove}} {{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.PortBindings}}",
    '{{if eq .State.Status "exited"}}stopped{{else}}other{{end}}',
    '{{index .Config.Labels "nosuch"}}',
    "{{json .Config.Labels.nosuch}}",
]
FAILING_TEMPLATES = ["{{.NoSuchField}}", "{{.State.NoSuchField}}"]


def test_inspect_format_matches_docker(both: Both, everyday: dict[str, str]) -> None:
    labelled = everyday["labelled"]
    both.run("--name", "insp", "-l", "extra=1", "-v", "parityvol:/data", "--read-only", labelled, "echo hi")
    both.run("--name", "insp2", "--entrypoint", "/bin/echo", labelled, "a", "b c")
    for template in INSPECT_TEMPLATES:
        both.same("inspect", "-f", template, "insp", "insp2")
        both.same("container", "inspect", "--format", template, "insp")
    # Every key Dockyard writes is one Docker writes, in the same place (Cgroup is Dockyard's own).
    theirs_json = json.loads(both.engine.docker("inspect", "insp").stdout)[0]
    ours_json = json.loads(both.dy("inspect", "insp", check=True).stdout)[0]
    assert set(ours_json) - {"Cgroup"} <= set(theirs_json)
    for section in ("State", "Config", "HostConfig", "NetworkSettings", "GraphDriver"):
        assert set(ours_json[section]) <= set(theirs_json[section]), section
    assert [set(m) for m in ours_json["Mounts"]] == [set(m) for m in theirs_json["Mounts"]]
    for key in ("Cmd", "Entrypoint", "Labels", "ExposedPorts", "WorkingDir", "User", "Image", "Tty"):
        assert ours_json["Config"][key] == theirs_json["Config"][key], key
    for template in FAILING_TEMPLATES:
        theirs, ours = both("inspect", "-f", template, "insp")
        assert ours[2] == theirs[2] == 1 and ours[1].startswith("template parsing error: "), (theirs, ours)
        if "nosuch" in template.lower():
            assert 'map has no entry for key "' in ours[1] and 'map has no entry for key "' in theirs[1]
    theirs, ours = both("inspect", "-f", "{{.State.Status", "insp")
    assert (
        (ours[1], ours[2]) == (theirs[1], theirs[2]) == ("template parsing error: template: :1: unclosed action\n", 64)
    )
    theirs, ours = both("inspect", "nosuch")
    assert (ours[0].strip(), ours[2]) == (theirs[0].strip(), theirs[2]) == ("[]", 1)
    both.engine.docker("volume", "rm", "parityvol", check=False)


HOST_CONFIG_KEYS = ("Privileged", "CapAdd", "CapDrop", "SecurityOpt", "RestartPolicy", "Tmpfs", "ExtraHosts", "Dns",
                    "DnsSearch", "DnsOptions", "Ulimits")  # fmt: skip
HOST_CONFIG_FLAGS = [
    [],
    ["--cap-add", "net_admin", "--cap-drop", "CHOWN", "--security-opt", "no-new-privileges"],
    ["--cap-drop", "ALL", "--cap-add", "CAP_NET_RAW", "--security-opt", "seccomp=unconfined"],
    ["--privileged"],
    ["--restart", "on-failure:3", "--tmpfs", "/run:size=1m", "--tmpfs", "/scratch", "--add-host", "db:10.1.1.1"],
    ["--dns", "192.0.2.53", "--dns-search", "example.org", "--dns-option", "ndots:2", "--ulimit", "nofile=1024:2048"],
]


@pytest.mark.parametrize("flags", HOST_CONFIG_FLAGS, ids=[" ".join(f) or "defaults" for f in HOST_CONFIG_FLAGS])
def test_inspect_host_config_of_run_flags_matches_docker(both: Both, images: dict[str, str], flags: list[str]) -> None:
    """The security and run flags land in HostConfig with Docker's names and shapes."""
    plain = images["exec"]
    both.engine.docker("create", "--network", "none", "--name", "flagged", *flags, plain)
    both.dy("create", "--name", "flagged", *flags, plain, check=True)
    for key in HOST_CONFIG_KEYS:
        both.same("inspect", "-f", f"{{{{json .HostConfig.{key}}}}}", "flagged")
    both.same("inspect", "-f", "{{.RestartCount}} {{.State.Restarting}}", "flagged")


def test_logs_tail_and_since_match_docker(both: Both, images: dict[str, str]) -> None:
    # Lines of one stream only where the count spans streams: which of two pipes is read first is a race.
    both.run(
        "--name", "talk", "--entrypoint", "/bin/sh", images["exec"], "-c", "for i in 1 2 3 4 5 6; do echo out$i; done"
    )
    for flags in ([], ["--tail", "3"], ["-n", "1"], ["--tail", "0"], ["--tail", "all"], ["--since", "1h"],
                  ["--since", "2100-01-01T00:00:00Z"], ["--until", "2000-01-01T00:00:00Z"]):  # fmt: skip
        theirs, ours = both("logs", *flags, "talk")
        assert ours == theirs, flags
    both.run("--name", "mixed", "--entrypoint", "/bin/sh", images["exec"], "-c", "echo out; echo err >&2; echo more")
    theirs, ours = both("logs", "mixed")
    assert ours == theirs


def test_lifecycle_commands_match_docker(both: Both, images: dict[str, str]) -> None:
    plain = images["exec"]
    both.engine.docker("create", "--network", "none", "--name", "job", "--entrypoint", "/bin/sh", plain, "-c",
                       "exit 5")  # fmt: skip
    both.dy("create", "--name", "job", "--entrypoint", "/bin/sh", plain, "-c", "exit 5", check=True)
    both.same("ps", "-a", "--format", "{{.Names}} {{.Status}}")
    both.same("start", "job")
    both.same("wait", "job")
    both.same("restart", "job")
    both.same("wait", "job")
    both.same("rename", "job", "task")
    both.same("ps", "-a", "--format", "{{.Names}} {{.State}}")
    both.engine.docker("create", "--network", "none", "--name", "blocker", plain)
    both.dy("create", "--name", "blocker", plain, check=True)
    theirs, ours = both("rename", "task", "blocker")
    assert ours[2] == theirs[2] == 1 and "is already in use" in ours[1]
    both.same("port", "task")
    theirs, ours = both("wait", "nosuch")
    assert ours[2] == theirs[2]
    # top and stats of a running container: the same header and the same processes
    require_tool("ps")
    both.run("-d", "-i", "--name", "sleepy", "--entrypoint", "/bin/sh", plain, "-c", "read x")
    theirs, ours = both("top", "sleepy")
    assert ours[0].splitlines()[0] == theirs[0].splitlines()[0]
    assert [line.split()[-3:] for line in ours[0].splitlines()[1:]] == [
        line.split()[-3:] for line in theirs[0].splitlines()[1:]
    ]
    both.same("stats", "--no-stream", "--format", "table {{.Name}}\\t{{.PIDs}}", "sleepy")
    theirs, ours = both("stats", "--no-stream", "sleepy")
    assert ours[0].splitlines()[0].split() == theirs[0].splitlines()[0].split()


def test_diff_and_cp_match_docker(both: Both, images: dict[str, str], tmp_path: Path) -> None:
    plain = images["exec"]
    script = "mkdir /tmp/new && echo x > /tmp/new/f && rm /bin/sort && echo y > /home/app/added"
    both.run("--name", "changed", "-u", "0", "--entrypoint", "/bin/sh", plain, "-c", script)
    theirs, ours = both("diff", "changed")
    # Docker lists the changes in Go's random map order; Dockyard sorts them
    assert ours[0].splitlines() == sorted(theirs[0].splitlines(), key=lambda line: line[2:])
    assert ours[2] == theirs[2] == 0
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "inner.txt").write_text("inner\n")
    (src / "top.txt").write_text("top\n")
    for path in (src, src / "sub", src / "sub" / "inner.txt", src / "top.txt"):
        os.chown(path, 4321, 4321)
        os.utime(path, (1_700_000_000, 1_700_000_000))
    lister = "ls -lnR /tmp/copied /tmp/archived /tmp/top.txt"
    # (as root: Docker's `cp -a` looks the container's user up with getent, which this image lacks)
    both.engine.docker("create", "--network", "none", "--name", "target", "-u", "0", "--entrypoint", "/bin/sh",
                       plain, "-c", lister)  # fmt: skip
    both.dy("create", "--name", "target", "-u", "0", "--entrypoint", "/bin/sh", plain, "-c", lister, check=True)
    both.same("cp", str(src), "target:/tmp/copied")
    both.same("cp", "-a", str(src), "target:/tmp/archived")
    both.same("cp", str(src / "top.txt"), "target:/tmp/")
    theirs, ours = both("start", "-a", "target")
    assert ours[0] == theirs[0] and "4321" in ours[0]
    for cli in ("docker", "dockyard"):
        out = tmp_path / cli
        out.mkdir()
        run = both.engine.docker if cli == "docker" else both.dy
        run("cp", "target:/tmp/copied", str(out / "plain"))
        run("cp", "-a", "target:/tmp/copied", str(out / "kept"))
    for name in ("plain", "kept"):
        docker_tree = {p.relative_to(tmp_path / "docker" / name): (p.stat().st_uid, p.stat().st_mode)
                       for p in (tmp_path / "docker" / name).rglob("*")}  # fmt: skip
        our_tree = {p.relative_to(tmp_path / "dockyard" / name): (p.stat().st_uid, p.stat().st_mode)
                    for p in (tmp_path / "dockyard" / name).rglob("*")}  # fmt: skip
        assert our_tree == docker_tree, name
    theirs, ours = both("cp", "target:/nonexistent", str(tmp_path))
    assert ours[2] == theirs[2] == 1


def test_save_and_load_between_docker_and_dockyard(both: Both, everyday: dict[str, str], tmp_path: Path) -> None:
    layered = everyday["layered"]
    expected = both.engine.docker("run", "--rm", "--network", "none", layered).stdout
    assert "made-in-a-layer" in expected and "No such file" in expected
    # docker save | dockyard load
    both.engine.docker("tag", layered, "parity/from-docker:1")
    archive = tmp_path / "from-docker.tar"
    both.engine.docker("save", "-o", str(archive), "parity/from-docker:1")
    assert both.dy("load", "-i", str(archive), check=True).stdout == "Loaded image: parity/from-docker:1\n"
    assert both.dy("run", "--rm", "parity/from-docker:1").stdout == expected
    assert (
        both.dy("images", "-q", "parity/from-docker:1").stdout
        == both.engine.docker("images", "-q", "parity/from-docker:1").stdout
    )
    piped = subprocess.run(f"docker save parity/from-docker:1 | {sys.executable} -m dockyard load", shell=True,
                           env={**both.dy.env, **both.engine.env, "DOCKYARD_RUNTIME_ROOT": str(both.dy.root)},
                           capture_output=True, text=True)  # fmt: skip
    assert piped.returncode == 0 and piped.stdout == "Loaded image: parity/from-docker:1\n", piped.stderr
    # dockyard save | docker load
    both.dy("pull", layered, check=True)
    both.dy("tag", layered, "parity/from-dockyard:1", check=True)
    piped = subprocess.run(f"{sys.executable} -m dockyard save parity/from-dockyard:1 | docker load", shell=True,
                           env={**both.dy.env, **both.engine.env, "DOCKYARD_RUNTIME_ROOT": str(both.dy.root)},
                           capture_output=True, text=True)  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert "Loaded image: parity/from-dockyard:1" in piped.stdout
    assert both.engine.docker("run", "--rm", "--network", "none", "parity/from-dockyard:1").stdout == expected
    # and back again, through Docker's own save
    both.engine.docker("save", "-o", str(tmp_path / "back.tar"), "parity/from-dockyard:1")
    fresh = Dockyard(tmp_path / "fresh-root")
    fresh("load", "-i", str(tmp_path / "back.tar"), check=True)
    assert fresh("run", "--rm", "parity/from-dockyard:1").stdout == expected
    for ref in ("parity/from-docker:1", "parity/from-dockyard:1"):
        both.engine.docker("rmi", ref, check=False)


def test_system_df_and_groups_match_docker(both: Both, images: dict[str, str]) -> None:
    theirs, ours = both("system", "df")
    assert ours[0].splitlines()[0].split() == theirs[0].splitlines()[0].split()
    assert [line.split()[0] for line in ours[0].splitlines()] == [line.split()[0] for line in theirs[0].splitlines()]
    both.same("volume", "create", "paritydangling")
    both.same("volume", "ls", "-q", "-f", "name=paritydangling", "-f", "dangling=true")
    both.same("volume", "ls", "-f", "name=paritydangling")
    both.same("volume", "ls", "--format", "{{.Name}} {{.Driver}}", "-f", "name=paritydangling")
    both.same("volume", "rm", "paritydangling")
    both.run("--name", "grouped", images["exec"])
    both.same("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", images["exec"])
    both.same("image", "ls", "--format", "table {{.Repository}}\t{{.Tag}}", images["exec"])
    both.same("images", "-q", "--filter", "dangling=true")
    both.same("image", "inspect", "-f", "{{.Id}} {{json .RepoTags}} {{.Os}}/{{.Architecture}}", images["exec"])
    both.same("image", "inspect", "--format", "{{json .Config.Cmd}} {{.Config.WorkingDir}}", images["exec"])
    theirs, ours = both("images", "-f", "nonsense=1")
    assert (ours[1], ours[2]) == (theirs[1], theirs[2])
    both.same("container", "ls", "-a", "--format", "{{.Names}}")
    both.same("container", "inspect", "-f", "{{.State.ExitCode}}", "grouped")
    both.same("container", "rm", "grouped")
    theirs, ours = both("container", "ls", "-a", "-q")
    assert ours[0] == theirs[0] == ""
