"""The real Docker engine against a real `dockyard serve`: build FROM scratch, push, pull, run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.servers import DockerEngine, RegistryProcess

pytestmark = pytest.mark.e2e


def build_busybox_image(engine: DockerEngine, context: Path, tag: str, extra: str = "") -> None:
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "RUN echo 'hello from dockyard' > /greeting\n"
        f"{extra}"
        'CMD ["/bin/cat", "/greeting"]\n'
    )
    engine.docker("build", "-t", tag, str(context))


def test_push_pull_run(docker_engine: DockerEngine, any_registry: RegistryProcess, tmp_path: Path) -> None:
    ref = f"{any_registry.address}/e2e/busybox:v1"
    build_busybox_image(docker_engine, tmp_path / "ctx", ref)
    push = docker_engine.docker("push", ref)
    assert "digest: sha256:" in push.stdout
    digest = push.stdout.split("digest: ")[1].split()[0]

    # a second repository gets its layers by cross-repository mount
    other = f"{any_registry.address}/e2e/copy:v1"
    docker_engine.docker("tag", ref, other)
    mounted = docker_engine.docker("push", other)
    assert "Mounted from e2e/busybox" in mounted.stdout

    docker_engine.docker("rmi", ref, other)
    pulled = docker_engine.docker("pull", ref)
    assert digest in pulled.stdout
    run = docker_engine.docker("run", "--rm", "--network", "none", ref)
    assert run.stdout.strip() == "hello from dockyard"

    docker_engine.docker("rmi", ref)
    by_digest = f"{any_registry.address}/e2e/busybox@{digest}"
    docker_engine.docker("pull", by_digest)
    run = docker_engine.docker("run", "--rm", "--network", "none", by_digest, "/bin/echo", "by digest")
    assert run.stdout.strip() == "by digest"
    docker_engine.docker("rmi", by_digest)


def test_pull_unknown_tag_fails_cleanly(docker_engine: DockerEngine, any_registry: RegistryProcess) -> None:
    result = docker_engine.docker("pull", f"{any_registry.address}/e2e/none:nope", check=False)
    assert result.returncode != 0
    assert "not found" in result.stderr.lower() or "unknown" in result.stderr.lower()
