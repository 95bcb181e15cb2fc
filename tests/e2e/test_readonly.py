"""`storage.maintenance.readonly.enabled` with a real client: skopeo pulls from a read-only
`dockyard serve`, and its push is refused with the registry's read-only message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import require_tool
from tests.imagebuild import ImageSpec, file, layer, write_layout
from tests.servers import running_registry

pytestmark = pytest.mark.e2e


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180)


def test_skopeo_pulls_from_a_read_only_registry_and_cannot_push(tmp_path: Path) -> None:
    require_tool("skopeo")
    image = write_layout(tmp_path / "in", ImageSpec([layer([file("etc/motd", b"read only\n")])]), tag="v1")
    with running_registry(tmp_path / "data") as server:
        pushed = skopeo(
            "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'in'}:v1", f"docker://{server.address}/ro/app:v1"
        )
        assert pushed.returncode == 0, pushed.stderr
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"storage": {"maintenance": {"readonly": {"enabled": True}}}}))
    with running_registry(tmp_path / "data", config=config) as server:
        pulled = skopeo(
            "copy", "--src-tls-verify=false", f"docker://{server.address}/ro/app:v1", f"oci:{tmp_path / 'out'}:v1"
        )
        assert pulled.returncode == 0, pulled.stderr
        assert image.manifest_digest in (tmp_path / "out" / "index.json").read_text()
        refused = skopeo(
            "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'in'}:v1", f"docker://{server.address}/ro/other:v1"
        )
        assert refused.returncode != 0
        assert "read-only" in refused.stderr, refused.stderr
        deleted = skopeo("delete", "--tls-verify=false", f"docker://{server.address}/ro/app:v1")
        assert deleted.returncode != 0 and "read-only" in deleted.stderr, deleted.stderr
        assert httpx.get(f"{server.url}/v2/ro/app/tags/list").json()["tags"] == ["v1"]
