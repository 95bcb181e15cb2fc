"""The README's "Push an image" steps, run as written (only the registry's port differs): the image
they build from busybox-static reaches the registry, with Docker and without it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_busybox, require_tool
from tests.servers import DockerEngine, RegistryProcess

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def _push_blocks() -> tuple[str, str]:
    """The section's two shell blocks: the rootfs and Docker build, then the umoci and skopeo one."""
    section = README.read_text().split("## Push an image", 1)[1].split("\n## ", 1)[0]
    docker, umoci = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return docker, umoci


def _run(script: str, cwd: Path, registry: RegistryProcess, env: dict[str, str] | None = None) -> None:
    script = script.replace("127.0.0.1:5000", registry.address)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"


ACCEPT = "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"


def _assert_pushed(registry: RegistryProcess) -> None:
    assert httpx.get(f"{registry.url}/v2/demo/web/tags/list").json()["tags"] == ["latest"]
    manifest = httpx.get(f"{registry.url}/v2/demo/web/manifests/latest", headers={"Accept": ACCEPT}).json()
    config = httpx.get(f"{registry.url}/v2/demo/web/blobs/{manifest['config']['digest']}").json()
    assert config["config"]["Cmd"] == ["/bin/busybox", "httpd", "-f", "-v", "-p", "80", "-h", "/www"]
    assert "80/tcp" in config["config"]["ExposedPorts"]


def test_the_docker_less_push(registry: RegistryProcess, tmp_path: Path) -> None:
    require_busybox()
    require_tool("umoci")
    require_tool("skopeo")
    docker, umoci = _push_blocks()
    rootfs = "\n".join(line for line in docker.splitlines() if line.startswith(("mkdir", "cp ", "echo")))
    _run(rootfs + "\n" + umoci, tmp_path, registry)
    _assert_pushed(registry)


def test_the_docker_push(registry: RegistryProcess, docker_engine: DockerEngine, tmp_path: Path) -> None:
    require_busybox()
    docker, _ = _push_blocks()
    _run(docker, tmp_path, registry, env=docker_engine.env)
    _assert_pushed(registry)
