"""A registry:2 data directory is served by Dockyard unchanged, and back again (Debian's
`docker-registry`, CNCF distribution 2.8, on the same directory)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_tool
from tests.imagebuild import ImageSpec, busybox_entries, file, layer, write_layout
from tests.servers import free_port, start_registry, wait_for

pytestmark = pytest.mark.e2e


@contextmanager
def distribution(root: Path, workdir: Path) -> Iterator[str]:
    binary = require_tool("docker-registry")
    port = free_port()
    config = workdir / f"distribution-{port}.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/v2/", timeout=2).status_code == 200, 30, "docker-registry")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(20)


def skopeo(*args: str) -> str:
    require_tool("skopeo")
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_same_directory_both_ways(tmp_path: Path) -> None:
    require_tool("docker-registry")
    require_tool("skopeo")
    root = tmp_path / "data"
    first = write_layout(tmp_path / "one", ImageSpec([layer(busybox_entries(["sh"]))]), tag="one")
    second = write_layout(tmp_path / "two", ImageSpec([layer([file("two", b"2")])]), tag="two")

    with distribution(root, tmp_path) as address:
        skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'one'}:one", f"docker://{address}/interop/app:one")

    dockyard = start_registry(root)
    try:
        raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{dockyard.address}/interop/app:one")
        assert json.loads(raw)["config"]["digest"] == first.id
        skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{dockyard.address}/interop/app:one",
            f"oci:{tmp_path / 'back'}:one",
        )
        assert httpx.get(f"{dockyard.url}/v2/_catalog").json()["repositories"] == ["interop/app"]
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{tmp_path / 'two'}:two",
            f"docker://{dockyard.address}/interop/app:two",
        )
    finally:
        dockyard.stop()

    with distribution(root, tmp_path) as address:
        tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{address}/interop/app"))
        assert sorted(tags["Tags"]) == ["one", "two"]
        raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{address}/interop/app:two")
        assert json.loads(raw)["config"]["digest"] == second.id
        skopeo("copy", "--src-tls-verify=false", f"docker://{address}/interop/app:two", f"oci:{tmp_path / 'out'}:two")
        for la in second.layers:
            assert (tmp_path / "out" / "blobs" / "sha256" / la.digest.split(":")[1]).read_bytes() == la.blob
