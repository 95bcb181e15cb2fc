"""Where the Docker engine runs: the same image under `docker run` and `dockyard run` prints the
same thing for the Entrypoint/Cmd/Env/WorkingDir/User cases (issue 5, point 1). The image is built
by `docker build` FROM scratch with a static busybox, pushed to a Dockyard, pulled by the runtime."""

from __future__ import annotations

import json
import shutil
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
