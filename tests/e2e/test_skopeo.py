"""skopeo against a real `dockyard serve`: copy in and out, multi-platform, inspect, tags, delete."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_tool
from tests.imagebuild import ImageSpec, busybox_entries, file, layer, sha256, write_layout
from tests.servers import RegistryProcess

pytestmark = pytest.mark.e2e


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    require_tool("skopeo")
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result


def test_copy_in_and_out(any_registry: RegistryProcess, tmp_path: Path) -> None:
    require_tool("skopeo")
    spec = ImageSpec([layer(busybox_entries(["sh", "echo"])), layer([file("etc/motd", b"hello\n")])])
    image = write_layout(tmp_path / "in", spec, tag="v1")
    ref = f"docker://{any_registry.address}/e2e/skopeo:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'in'}:v1", ref)

    inspect = json.loads(skopeo("inspect", "--tls-verify=false", ref).stdout)
    assert inspect["Digest"] == image.manifest_digest
    assert inspect["Layers"] == [la.digest for la in image.layers]
    raw = skopeo("inspect", "--raw", "--tls-verify=false", ref).stdout
    assert sha256(raw.encode()) == image.manifest_digest

    skopeo("copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'out'}:v1")
    out_index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert out_index["manifests"][0]["digest"] == image.manifest_digest
    for la in image.layers:
        assert (tmp_path / "out" / "blobs" / "sha256" / la.digest.split(":")[1]).read_bytes() == la.blob

    tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{any_registry.address}/e2e/skopeo").stdout)
    assert tags["Tags"] == ["v1"]


def test_copy_all_platforms(any_registry: RegistryProcess, tmp_path: Path) -> None:
    specs = [
        ImageSpec([layer([file("arch", b"amd64\n")])], architecture="amd64"),
        ImageSpec([layer([file("arch", b"arm64\n")])], architecture="arm64", variant="v8"),
    ]
    image = write_layout(tmp_path / "in", specs, tag="multi")
    assert image.index is not None
    ref = f"docker://{any_registry.address}/e2e/multi:multi"
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false", f"oci:{tmp_path / 'in'}:multi", ref)
    r = httpx.get(
        f"{any_registry.url}/v2/e2e/multi/manifests/multi",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    )
    assert r.status_code == 200
    assert r.content == image.index
    for child in json.loads(image.index)["manifests"]:
        assert httpx.head(f"{any_registry.url}/v2/e2e/multi/manifests/{child['digest']}").status_code == 200
    skopeo("--override-arch", "arm64", "copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'arm'}:x")
    arm_blobs = {p.name for p in (tmp_path / "arm" / "blobs" / "sha256").iterdir()}
    assert sha256(b"") not in arm_blobs
    skopeo("copy", "--all", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'all'}:x")
    all_index = json.loads((tmp_path / "all" / "index.json").read_text())
    assert all_index["manifests"][0]["digest"] == sha256(image.index)


def test_delete(any_registry: RegistryProcess, tmp_path: Path) -> None:
    write_layout(tmp_path / "in", ImageSpec([layer([file("x", b"x")])]), tag="gone")
    ref = f"docker://{any_registry.address}/e2e/del:gone"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'in'}:gone", ref)
    skopeo("delete", "--tls-verify=false", ref)
    r = httpx.get(f"{any_registry.url}/v2/e2e/del/manifests/gone")
    assert r.status_code == 404
