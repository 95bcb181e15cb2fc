"""`dockyard build` against `docker build` (issue 15): the same Dockerfiles built by the Docker engine
(classic builder) and by Dockyard, both pushed to a Dockyard registry; then the image configs, the number of
layers, the final root filesystems (names, types, modes, owners, contents, link targets, hard links, with the
whiteouts applied) and the output of `docker run` are compared, the Dockyard-built image going through
`docker pull`, so Docker accepts what Dockyard builds. The base image is busybox-static FROM scratch."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from oci.platform import Platform
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


def _tar(entries: dict[str, str], compression: Literal["gz", "bz2", "xz", ""] = "gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o640, 1000, 50, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    packers: dict[str, Callable[[bytes], bytes]] = {
        "gz": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "": bytes,
    }
    return packers[compression](out.getvalue())


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
    # What the other cases leave out: `# syntax` (a comment to the classic builder, a directive to BuildKit,
    # the same image either way), comments between and inside instructions, FROM --platform, the old
    # `ENV KEY value` form, MAINTAINER, EXPOSE ranges and protocols, exec-form RUN, globs, several sources
    # into a directory, ADD of a plain tar and of a file that is no archive, USER uid:gid, WORKDIR with a
    # variable, a build arg in a RUN's environment, and an ENTRYPOINT in shell form with a CMD.
    "directives": Case(
        """# syntax=docker/dockerfile:1
# A comment before the first instruction.
ARG BASE={base}
FROM --platform=linux/{arch} $BASE
  # an indented comment
MAINTAINER someone@example.com
ARG COLOR=blue
ENV DIR /opt/app
ENV LONG="a value with spaces" \\
    # a comment inside a continuation
    NEXT=$DIR/next
LABEL one=1 \\
      two="2 two"
EXPOSE 8000-8002 53/udp 9000/tcp
WORKDIR $DIR
RUN ["/bin/sh", "-c", "echo exec form $COLOR > exec.txt"]
RUN echo "color=$COLOR" > shell.txt

COPY files/*.txt files/n?sted ./globbed/
COPY files/one.txt files/nested/two.txt ./several/
ADD plain.tar /opt/plain/
ADD packed.tar.bz2 packed.tar.xz /opt/packed/
ADD notatar.tar.gz /opt/raw/
USER 1000:50
ENTRYPOINT echo "entry as $(id -u):$(id -g) in $(pwd)"; ls -R /opt | sort; cat /opt/app/*.txt
CMD ["ignored by the shell form"]
""",
        {
            "files/one.txt": "one\n",
            "files/three.txt": "three\n",
            "files/nested/two.txt": "two\n",
            "plain.tar": _tar({"p/inside.txt": "plain tar\n"}, ""),
            "notatar.tar.gz": "not really a tar\n",
            "packed.tar.bz2": _tar({"bz2/inside.txt": "bzip2\n"}, "bz2"),
            "packed.tar.xz": _tar({"xz/inside.txt": "xz\n"}, "xz"),
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


# What only BuildKit builds (the classic builder refuses --chmod): compared with BuildKit alone. Every case
# of CASES is compared with BuildKit too. Heredocs are not: the engine's built-in Dockerfile frontend
# (docker.io 20.10) predates them, and a newer one would be an image pulled from Docker Hub.
BUILDKIT_CASES: dict[str, Case] = {
    "chmod": Case(
        """FROM {base}
COPY --chmod=0640 files/one.txt /c/one.txt
COPY --chown=app:staff --chmod=750 files/ /s/
RUN mkdir -p /existing && chmod 711 /existing
COPY --chmod=600 --chown=1000 files/nested/two.txt /existing/srv/
COPY --chmod=755 files/one.txt /existing/
CMD ["find", "/c", "/s", "/existing", "-exec", "stat", "-c", "%n %a %u:%g", "{{}}", ";"]
""",
        {"files/one.txt": "one\n", "files/nested/two.txt": "two\n"},
    ),
    # A glob naming a directory with a trailing slash (the classic builder matched nothing with it).
    "glob-slash": Case(
        'FROM {base}\nCOPY files/*.txt files/n?sted/ /globbed/\nCMD ["ls", "/globbed"]\n',
        {"files/one.txt": "one\n", "files/nested/two.txt": "two\n"},
    ),
    # VOLUME during RUN, as BuildKit does it: nothing is mounted, what the step writes there is kept.
    "volume": Case(
        """FROM {base}
RUN mkdir -p /data && echo before > /data/before
VOLUME /data
RUN echo after > /data/after
VOLUME /empty
CMD ["sh", "-c", "ls /data; ls -d /empty"]
""",
        {},
    ),
}
# Where Docker's two builders differ, dockyard build follows BuildKit (the reference); the classic
# builder's side of each difference is checked as such. A FROM scratch stage has WorkingDir "/" in BuildKit
# ("" in the classic builder); the classic builder mounted each VOLUME during a later RUN, leaving its
# mount point in that layer.
CLASSIC_CONFIG_DIFFERS = {("scratch", "WorkingDir"): ("", "/")}  # (classic builder's, Dockyard's = BuildKit's)
CLASSIC_ONLY_PATHS = {"filesystem": ["cache"]}
BUILDKIT_CLI = "/usr/bin/docker"  # Debian's docker.io CLI: the engine's BuildKit without the buildx plugin


def _write_context(ctx: Path, case: Case, base: str) -> None:
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(case.dockerfile.format(base=base, arch=Platform.host().architecture))
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
    docker: str  # the reference docker's classic builder built and pushed ("" when it cannot)
    dockyard: str  # the reference dockyard built and pushed (and docker pulled)
    build_output: str
    buildkit: str = ""  # the reference BuildKit built and pushed, when a CLI here drives it


def _buildkit(engine: DockerEngine, ctx: Path, ref: str) -> bool:
    """Build `ctx` with the engine's BuildKit (host network: the test engine has no bridge), and push it."""
    if not os.path.isfile(BUILDKIT_CLI):
        return False
    dockerfile = ctx / "Dockerfile"
    text = dockerfile.read_text()
    if text.startswith("# syntax="):
        # BuildKit would fetch that frontend image (no network here); its built-in one is the same reading.
        dockerfile = ctx.parent / "Dockerfile.buildkit"
        dockerfile.write_text(text.partition("\n")[2])
    built = subprocess.run(
        [BUILDKIT_CLI, "build", "--network", "host", "-q", "-f", str(dockerfile), "-t", ref, str(ctx)],
        env={**engine.env, "DOCKER_BUILDKIT": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if built.returncode != 0 and "buildx" in built.stderr:
        return False
    assert built.returncode == 0, built.stderr
    engine.docker("push", ref)
    return True


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
        for name, case in {**CASES, **BUILDKIT_CASES}.items():
            ctx = tmp_path_factory.mktemp(name) / "ctx"
            _write_context(ctx, case, base)
            theirs, ours = f"{registry.address}/docker/{name}:1", f"{registry.address}/dockyard/{name}:1"
            kit = f"{registry.address}/buildkit/{name}:1"
            if name in CASES:
                engine.docker("build", "-q", "-t", theirs, str(ctx))
                engine.docker("push", theirs)
            result = dy("build", "-t", ours, str(ctx), timeout=300)
            assert result.returncode == 0, result.stdout + result.stderr
            dy("push", ours, check=True)
            engine.docker("pull", ours)
            built[name] = Built(theirs if name in CASES else "", ours, result.stdout)
            if _buildkit(engine, ctx, kit):
                built[name].buildkit = kit
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
        pair = (theirs["Config"].get(field), ours["Config"].get(field))
        assert pair == CLASSIC_CONFIG_DIFFERS.get((name, field), (pair[0], pair[0])), field
    assert len(ours["RootFS"]["Layers"]) == len(theirs["RootFS"]["Layers"])
    assert (ours["Os"], ours["Architecture"]) == (theirs["Os"], theirs["Architecture"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_root_filesystem_matches_docker_build(world: World, name: str) -> None:
    engine, _, _, built = world
    theirs, ours = _tree(engine, built[name].docker), _tree(engine, built[name].dockyard)
    assert (sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))) == (CLASSIC_ONLY_PATHS.get(name, []), [])
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


def test_image_on_a_pulled_base_pushed_to_another_registry_runs_in_docker(world: World, tmp_path: Path) -> None:
    """The app was built FROM the base Docker pushed and Dockyard pulled; a second registry has none of
    it, so the base layers are uploaded from the archives the pull kept; Docker pulls and runs the result."""
    engine, _, dy, built = world
    second = start_registry(tmp_path / "registry2")
    try:
        ref = f"{second.address}/moved/app:1"
        dy("tag", built["app"].dockyard, ref, check=True)
        pushed = dy("push", ref, check=True).stdout
        assert "Mounted" not in pushed and "already exists" not in pushed, pushed
        layers = len(_inspect(engine, built["app"].dockyard)["RootFS"]["Layers"])
        assert pushed.count(": Pushed") == layers, pushed
        engine.docker("pull", ref)
        for args in CASES["app"].runs:
            expected = engine.docker("run", "--rm", built["app"].docker, *args)
            assert engine.docker("run", "--rm", ref, *args).stdout == expected.stdout
    finally:
        second.stop()


def _require_buildkit(built: Built) -> str:
    require(bool(built.buildkit), f"no BuildKit: {BUILDKIT_CLI} (Debian's docker.io CLI) is missing or cannot use it")
    return built.buildkit


@pytest.mark.parametrize("name", sorted({**CASES, **BUILDKIT_CASES}))
def test_matches_buildkit(world: World, name: str) -> None:
    """BuildKit's reading of the Dockerfile is the reference: the config, the root filesystem and the
    output of `docker run` of what BuildKit built and of what Dockyard built."""
    engine, _, _, built = world
    kit = _require_buildkit(built[name])
    theirs, ours = _inspect(engine, kit), _inspect(engine, built[name].dockyard)
    for field in CONFIG_FIELDS:
        assert ours["Config"].get(field) == theirs["Config"].get(field), field
    assert len(ours["RootFS"]["Layers"]) == len(theirs["RootFS"]["Layers"])
    kit_tree, our_tree = _tree(engine, kit), _tree(engine, built[name].dockyard)
    assert (sorted(set(kit_tree) - set(our_tree)), sorted(set(our_tree) - set(kit_tree))) == ([], [])
    assert {k: (v, kit_tree[k]) for k, v in our_tree.items() if kit_tree[k] != v} == {}
    case = CASES.get(name) or BUILDKIT_CASES[name]
    for args in case.runs:
        expected = engine.docker("run", "--rm", kit, *args, check=False)
        assert expected.returncode == 0, expected.stderr
        mine = engine.docker("run", "--rm", built[name].dockyard, *args, check=False)
        assert (mine.stdout, mine.returncode) == (expected.stdout, expected.returncode), mine.stderr
