"""Where the Docker engine runs: the same image under `docker run` and `dockyard run` prints the
same thing for the Entrypoint/Cmd/Env/WorkingDir/User cases (issue 5, point 1). The image is built
by `docker build` FROM scratch with a static busybox, pushed to a Dockyard, pulled by the runtime."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    for applet in ("sh", "echo", "id", "pwd", "env", "sort", "grep", "ls", "cat"):
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
