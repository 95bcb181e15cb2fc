"""`dockyard build` against `docker build` (issue 15): the same Dockerfiles built by the Docker engine
(classic builder) and by Dockyard, both pushed to a Dockyard registry; then the image configs, the number of
layers, the final root filesystems (names, types, modes, owners, contents, link targets, hard links, with the
whiteouts applied) and the output of `docker run` are compared, the Dockyard-built image going through
`docker pull`, so Docker accepts what Dockyard builds. The base image is busybox-static FROM scratch."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require, require_busybox, require_root, require_tool, whiteouts_work
from tests.runtime.conftest import Dockyard
from tests.servers import DockerEngine, RegistryProcess, start_dockerd, start_registry

pytestmark = [pytest.mark.privileged, pytest.mark.e2e]

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nbin:x:2:2:bin:/bin:/bin/false\n"
GROUP = "root:x:0:\nbin:x:2:\nstaff:x:50:app\napp:x:1000:\n"
CONFIG_FIELDS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
)

APP_SH = """#!/bin/sh
echo "serving $FLASK_APP as $(id -un) in $(pwd) with: $*"
cat /app/deps/list
ls /app
"""


@dataclass(frozen=True)
class Case:
    dockerfile: str
    files: dict[str, str | bytes]
    runs: tuple[tuple[str, ...], ...] = ((),)


def _tar(entries: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o640, 1000, 50, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


CASES: dict[str, Case] = {
    # The project notes' Flask-style app: dependencies first (their own cached layer), then the code,
    # an ENTRYPOINT with a default CMD; a shell script stands in for python, which busybox lacks.
    "app": Case(
        """FROM {base}
WORKDIR /app
COPY requirements.txt .
RUN mkdir -p /app/deps && while read line; do echo "installed $line" >> /app/deps/list; done < requirements.txt
COPY . .
RUN chmod 755 /app/app.sh && chown -R app:app /app/deps
ENV FLASK_APP=app.sh PORT=5000
EXPOSE 5000
USER app
ENTRYPOINT ["/bin/sh", "/app/app.sh"]
CMD ["--port", "5000"]
""",
        {
            "requirements.txt": "flask==3.0\nrequests\n",
            "app.sh": APP_SH,
            "static/style.css": "body {}\n",
            "cache.pyc": "compiled\n",
            "secret/key": "hidden\n",
            "secret/keep": "kept\n",
            ".dockerignore": "*.pyc\nsecret\n!secret/keep\nDockerfile\n",
        },
        ((), ("--debug",)),
    ),
    "sleep-exec": Case('FROM {base}\nCMD ["sleep", "0"]\n', {}, ((), ("echo", "replaced"))),
    "sleep-entrypoint": Case(
        'FROM {base}\nENTRYPOINT ["/bin/sh", "-c", "echo sleeping $0; sleep $0"]\nCMD ["0"]\n', {}, ((), ("0.1",))
    ),
    "sleep-shell": Case("FROM {base}\nCMD sleep 0 && echo slept\n", {}, ((), ("echo", "args"))),
    "sleep-entrypoint-shell": Case(
        'FROM {base}\nCMD ["ignored"]\nENTRYPOINT echo entry $0 && sleep 0\n', {}, ((), ("more",))
    ),
    # Whiteouts, opaque directories, hard links, symlinks, owners, modes, multi-stage, ADD of a tar.
    "filesystem": Case(
        """ARG BASE={base}
FROM $BASE AS builder
ARG GREETING=hello
RUN mkdir -p /out/tree/sub && echo "$GREETING" > /out/tree/file && ln /out/tree/file /out/tree/hard \\
 && ln -s file /out/tree/link && chmod 0600 /out/tree/file && chown 2:2 /out/tree/sub

FROM $BASE
ARG GREETING
ENV GREETING=${{GREETING:-unset}} EMPTY= SET=${{GREETING:+set}} DEFAULTED=${{NOPE:-fallback}}
LABEL org.example.name="filesystem case" version=1
RUN rm -rf /bin/vi /tmp && mkdir -p /var/data/old && touch /var/data/old/a /var/data/b
RUN rm -rf /var/data && mkdir -p /var/data && echo new > /var/data/new
COPY --from=builder /out/tree /tree/
COPY --chown=app:staff files/ /srv/files/
COPY --chown=bin files/one.txt /srv/by-bin
ADD bundle.tar.gz /opt/bundle/
WORKDIR relative/dir
WORKDIR ../other
VOLUME ["/var/data", "/cache"]
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=30s --timeout=5s --retries=2 CMD ["true"]
SHELL ["/bin/sh", "-e", "-c"]
RUN echo "shell: $0" > /shell-form
ONBUILD RUN echo triggered
CMD cat /shell-form /var/data/new /tree/link && find /tree /srv /opt/bundle | sort \
 && stat -c "%n %a %u:%g %h" /tree/file /tree/hard /srv/files/one.txt /srv/by-bin \
 && pwd && echo "$GREETING|$SET|$DEFAULTED"
""",
        {
            "files/one.txt": "one\n",
            "files/nested/two.txt": "two\n",
            "bundle.tar.gz": _tar({"inside/a.txt": "from a tar\n", "b.txt": "b\n"}),
        },
    ),
    "scratch": Case(
        """# escape=`
FROM {base} AS tools
RUN mkdir -p /rootfs/bin && cp /bin/busybox /rootfs/bin/ && ln -s busybox /rootfs/bin/sh `
    && ln -s busybox /rootfs/bin/echo
FROM scratch
COPY --from=tools /rootfs/ /
ENV A=1
CMD ["sh", "-c", "echo from scratch $A"]
""",
        {},
    ),
}


def _write_context(ctx: Path, case: Case, base: str) -> None:
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(case.dockerfile.format(base=base))
    for name, content in case.files.items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        path.chmod(0o644)
    for directory in [ctx, *[p for p in ctx.rglob("*") if p.is_dir()]]:
        directory.chmod(0o755)


def _base_context(ctx: Path) -> None:
    root = ctx / "rootfs"
    (root / "bin").mkdir(parents=True)
    busybox = require_busybox()
    shutil.copy2(busybox, root / "bin/busybox")
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    for d in ("home/app", "tmp", "var", "srv"):
        (root / d).mkdir(parents=True)
    (root / "tmp").chmod(0o1777)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY rootfs/ /\n")


World = tuple[DockerEngine, RegistryProcess, Dockyard, dict[str, "Built"]]


@dataclass
class Built:
    docker: str  # the reference docker built and pushed
    dockyard: str  # the reference dockyard built and pushed (and docker pulled)
    build_output: str


@pytest.fixture(scope="module")
def runtime_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_root()
    base = tmp_path_factory.mktemp("dyroot")
    if whiteouts_work(base):
        yield base / "runtime"
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(base)], capture_output=True)
    require(mounted.returncode == 0, f"no whiteouts in {base}, nor a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield base / "runtime"
    finally:
        subprocess.run(["umount", "-l", str(base)], check=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, runtime_root: Path) -> Iterator[World]:
    require_tool("dockerd")
    require_tool("docker")
    engine = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    registry = start_registry(tmp_path_factory.mktemp("registry") / "data")
    dy = Dockyard(runtime_root)
    try:
        base_ctx = tmp_path_factory.mktemp("base") / "ctx"
        _base_context(base_ctx)
        base = f"{registry.address}/base/busybox:1"
        engine.docker("build", "-q", "-t", base, str(base_ctx))
        engine.docker("push", base)
        built = {}
        for name, case in CASES.items():
            ctx = tmp_path_factory.mktemp(name) / "ctx"
            _write_context(ctx, case, base)
            theirs, ours = f"{registry.address}/docker/{name}:1", f"{registry.address}/dockyard/{name}:1"
            engine.docker("build", "-q", "-t", theirs, str(ctx))
            engine.docker("push", theirs)
            result = dy("build", "-t", ours, str(ctx), timeout=300)
            assert result.returncode == 0, result.stdout + result.stderr
            dy("push", ours, check=True)
            engine.docker("pull", ours)
            built[name] = Built(theirs, ours, result.stdout)
        yield engine, registry, dy, built
    finally:
        dy.cleanup()
        registry.stop()
        engine.stop()


def _inspect(engine: DockerEngine, ref: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(engine.docker("image", "inspect", ref).stdout)[0]
    return doc


def _tree(engine: DockerEngine, ref: str) -> dict[str, tuple[Any, ...]]:
    """The image's root filesystem: `docker create` + `docker export`, both images alike."""
    cid = engine.docker("create", ref, "/bin/true").stdout.strip()
    try:
        data = subprocess.run(
            ["docker", "export", cid], env=engine.env, capture_output=True, check=True, timeout=120
        ).stdout
    finally:
        engine.docker("rm", cid)
    tree: dict[str, tuple[Any, ...]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.name in (".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab"):
                continue  # the engine's own mount points and files, the same for both
            digest = ""
            if member.isreg():
                handle = tar.extractfile(member)
                digest = hashlib.sha256(handle.read() if handle else b"").hexdigest()
            tree[member.name] = (member.type, oct(member.mode), member.uid, member.gid, digest, member.linkname)
    return tree


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_matches_docker_build(world: World, name: str) -> None:
    engine, _, _, built = world
    theirs, ours = _inspect(engine, built[name].docker), _inspect(engine, built[name].dockyard)
    for field in CONFIG_FIELDS:
        assert ours["Config"].get(field) == theirs["Config"].get(field), field
    assert len(ours["RootFS"]["Layers"]) == len(theirs["RootFS"]["Layers"])
    assert (ours["Os"], ours["Architecture"]) == (theirs["Os"], theirs["Architecture"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_root_filesystem_matches_docker_build(world: World, name: str) -> None:
    engine, _, _, built = world
    theirs, ours = _tree(engine, built[name].docker), _tree(engine, built[name].dockyard)
    assert sorted(set(theirs) ^ set(ours)) == []
    assert {k: v for k, v in ours.items() if theirs[k] != v} == {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_docker_runs_what_dockyard_built(world: World, name: str) -> None:
    engine, _, dy, built = world
    for args in CASES[name].runs:
        expected = engine.docker("run", "--rm", built[name].docker, *args, check=False)
        assert expected.returncode == 0, expected.stderr
        ours = engine.docker("run", "--rm", built[name].dockyard, *args, check=False)
        assert (ours.stdout, ours.returncode) == (expected.stdout, expected.returncode), ours.stderr
        # And the runtime runs it too, as it runs what docker built.
        mine = dy("run", "--rm", built[name].dockyard, *args)
        assert (mine.stdout, mine.returncode) == (expected.stdout, 0), mine.stderr


def test_onbuild_trigger_runs_in_a_child_build(world: World, tmp_path: Path) -> None:
    engine, registry, dy, built = world
    ctx = tmp_path / "child"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {built['filesystem'].dockyard}\n")
    ours = dy("build", "-t", f"{registry.address}/dockyard/child:1", str(ctx))
    assert ours.returncode == 0, ours.stderr
    assert "triggered" in ours.stdout
    theirs = engine.docker("build", "-t", f"{registry.address}/docker/child:1", str(ctx))
    assert "triggered" in theirs.stdout
    assert _inspect(engine, f"{registry.address}/docker/child:1")["Config"].get("OnBuild") is None


def test_push_mounts_the_base_layer_and_skips_what_exists(
    world: World,
) -> None:
    _, registry, dy, built = world
    again = dy("push", built["app"].dockyard, check=True)
    assert "Layer already exists" in again.stdout
    assert "digest: sha256:" in again.stdout
    other = f"{registry.address}/elsewhere/app:2"
    dy("tag", built["app"].dockyard, other, check=True)
    moved = dy("push", other, check=True)
    assert "Mounted from" in moved.stdout, moved.stdout
    assert "Pushed" not in moved.stdout
