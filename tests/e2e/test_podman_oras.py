"""podman and oras against a real `dockyard serve`."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import require, require_root, require_tool
from tests.imagebuild import ImageSpec, busybox_entries, layer, write_layout
from tests.servers import RegistryProcess

pytestmark = pytest.mark.e2e


def test_podman_pull_and_push(registry: RegistryProcess, tmp_path: Path) -> None:
    require_root()
    podman = require_tool("podman")
    require_tool("skopeo")
    write_layout(tmp_path / "in", ImageSpec([layer(busybox_entries(["sh", "echo"]))]), tag="v1")
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            f"oci:{tmp_path / 'in'}:v1",
            f"docker://{registry.address}/pod/src:v1",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    runroot = Path(tempfile.mkdtemp(prefix="dy-pod-"))  # podman wants a runroot under 50 characters
    storage = ["--root", str(tmp_path / "podroot"), "--runroot", str(runroot), "--storage-driver", "vfs"]

    def run(*args: str) -> str:
        result = subprocess.run([podman, *storage, *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout

    run("pull", "--tls-verify=false", f"{registry.address}/pod/src:v1")
    run("tag", f"{registry.address}/pod/src:v1", f"{registry.address}/pod/dst:v2")
    run("push", "--tls-verify=false", f"{registry.address}/pod/dst:v2")
    tags = httpx.get(f"{registry.url}/v2/pod/dst/tags/list").json()
    assert tags["tags"] == ["v2"]
    run("rmi", "-a", "-f")
    shutil.rmtree(runroot, ignore_errors=True)


def test_oras_push_and_pull_artifact(registry: RegistryProcess, tmp_path: Path) -> None:
    try:
        import oras.client  # type: ignore[import-not-found]
        import oras.provider  # type: ignore[import-not-found]
    except ImportError:
        require(False, "the oras Python client is not installed")
        return
    artifact = tmp_path / "sbom.json"
    artifact.write_text(json.dumps({"packages": ["busybox"]}))
    client = oras.client.OrasClient(hostname=registry.address, insecure=True)
    target = f"{registry.address}/oras/art:v1"
    response = client.push(target=target, files=[str(artifact)], disable_path_validation=True)
    assert response.status_code in (200, 201)
    manifest = httpx.get(
        f"{registry.url}/v2/oras/art/manifests/v1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    )
    assert manifest.status_code == 200
    out = tmp_path / "out"
    files = client.pull(target=target, outdir=str(out))
    assert [Path(f).read_text() for f in files] == [artifact.read_text()]
