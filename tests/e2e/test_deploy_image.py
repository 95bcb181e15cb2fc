"""The Dockyard image, built from deploy/ with the real Docker engine and no container registry
(deploy/build-image.sh: a debootstrapped base, wheels from the host), run as a container: it is
healthy, non-root on a read-only root filesystem, Docker pushes and pulls through it, it stops
cleanly on SIGTERM, and compose.yaml brings it up for real."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_tool
from tests.servers import DockerEngine, free_port, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "dockyard:e2e"


@pytest.fixture(scope="module")
def image(docker_engine: DockerEngine) -> str:
    require_tool("debootstrap")
    env = {**docker_engine.env, "PYTHON": sys.executable}
    result = subprocess.run(
        ["sh", str(ROOT / "deploy" / "build-image.sh"), IMAGE], env=env, capture_output=True, text=True, timeout=1500
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return IMAGE


@pytest.fixture
def tiny_image(docker_engine: DockerEngine, tmp_path: Path) -> Iterator[str]:
    """A one-file image made locally (nothing can be pulled here), to push through the registry."""
    payload = tmp_path / "hello.txt"
    payload.write_text(f"hello {uuid.uuid4()}\n")
    archive = tmp_path / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(payload, arcname="hello.txt")
    name = f"tiny-{uuid.uuid4().hex[:8]}:1"
    docker_engine.docker("import", str(archive), name)
    yield name
    docker_engine.docker("rmi", "-f", name, check=False)


def _container_state(engine: DockerEngine, name: str) -> dict[str, object]:
    state: dict[str, object] = json.loads(engine.docker("inspect", "-f", "{{json .State}}", name).stdout)
    return state


def _push_pull(engine: DockerEngine, source: str, address: str) -> None:
    target = f"{address}/ops/{source}"
    engine.docker("tag", source, target)
    engine.docker("push", target)
    image_id = engine.docker("inspect", "-f", "{{.Id}}", target).stdout.strip()
    engine.docker("rmi", target)
    engine.docker("rmi", source)
    engine.docker("pull", target)
    assert engine.docker("inspect", "-f", "{{.Id}}", target).stdout.strip() == image_id
    engine.docker("tag", target, source)
    engine.docker("rmi", target)


def test_image_serves_pushes_and_pulls(docker_engine: DockerEngine, image: str, tiny_image: str) -> None:
    port = free_port()
    name = f"dockyard-{uuid.uuid4().hex[:8]}"
    volume = f"{name}-data"
    docker_engine.docker(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "-v", f"{volume}:/var/lib/dockyard",
        "-e", f"DOCKYARD_HTTP_ADDR=127.0.0.1:{port}",
        "-e", f"HEALTHCHECK_URL=http://127.0.0.1:{port}/healthz",
        "--health-interval", "1s", "--health-start-period", "1s",
        image,
    )  # fmt: skip
    try:
        try:
            wait_for(lambda: _container_state(docker_engine, name)["Health"]["Status"] == "healthy", 60, "healthy")  # type: ignore[index]
        except TimeoutError:
            state = json.dumps(_container_state(docker_engine, name), indent=1)
            logs = docker_engine.docker("logs", name, check=False)
            raise AssertionError(f"not healthy:\n{state}\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}") from None
        assert docker_engine.docker("exec", name, "id", "-u").stdout.strip() == "10001"
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["storage"] == "ok"

        _push_pull(docker_engine, tiny_image, f"127.0.0.1:{port}")
        assert "dockyard_http_requests_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text

        # GC in the container, against the running server's storage: nothing reachable goes.
        gc = docker_engine.docker("exec", name, "dockyard", "gc", "/etc/dockyard/config.yml", "--json")
        assert json.loads(gc.stdout)["blobs_deleted"] == 0
        # The data landed on the volume, owned by the unprivileged user.
        owner = docker_engine.docker("exec", name, "stat", "-c", "%u", "/var/lib/dockyard/docker").stdout
        assert owner.strip() == "10001"

        started = time.monotonic()
        docker_engine.docker("stop", "-t", "30", name)
        assert time.monotonic() - started < 20  # SIGTERM reached the server through tini
        assert _container_state(docker_engine, name)["ExitCode"] in (0, 143)
        logs = docker_engine.docker("logs", name).stderr
        access = [json.loads(line) for line in logs.splitlines() if line.startswith("{") and "request_id" in line]
        assert any(entry.get("action") == "push" and entry.get("status") == 201 for entry in access)
    finally:
        docker_engine.docker("rm", "-f", name, check=False)
        docker_engine.docker("volume", "rm", "-f", volume, check=False)


def test_compose_brings_up_the_filesystem_profile(docker_engine: DockerEngine, image: str, tiny_image: str) -> None:
    compose = require_tool("docker-compose")
    port = free_port()
    project = f"dyk{uuid.uuid4().hex[:8]}"
    env = {**docker_engine.env, "DOCKYARD_IMAGE": image, "DOCKYARD_PORT": str(port)}
    base = [compose, "-p", project, "-f", str(ROOT / "deploy" / "compose.yaml")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env=env, capture_output=True, text=True, timeout=300)

    up = run("up", "-d", "--no-build")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, 60, "compose service")
        _push_pull(docker_engine, tiny_image, f"127.0.0.1:{port}")
        # The data is on the named volume: it survives the container.
        assert run("rm", "-s", "-f", "dockyard").returncode == 0
        assert run("up", "-d", "--no-build").returncode == 0
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, 60, "compose restart")
        r = httpx.get(f"http://127.0.0.1:{port}/v2/ops/{tiny_image.split(':')[0]}/tags/list")
        assert r.json()["tags"] == ["1"]
    finally:
        down = run("down", "-v")
        assert down.returncode == 0, down.stderr
