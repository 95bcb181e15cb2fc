"""Real clients pulling through the mirror: a Docker engine with `--registry-mirror`, podman with a
`registries.conf` mirror entry (skopeo and containerd-style `?ns=` requests are in the other files)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_root, require_tool
from tests.imagebuild import ImageSpec, busybox_entries, layer
from tests.mirror.conftest import Upstream, metric, mirror_config, push_image
from tests.servers import free_port, start_dockerd, start_registry

pytestmark = pytest.mark.e2e


def test_docker_pulls_through_registry_mirror(upstream: Upstream, tmp_path: Path) -> None:
    require_root()
    require_tool("dockerd")
    require_tool("docker")
    image = push_image(tmp_path, upstream, "library/busybox", "mirrored", ImageSpec([layer(busybox_entries(["sh"]))]))
    port = free_port()
    config = mirror_config(tmp_path / "mirror.yml", {"remoteurl": upstream.proxy.url})
    mirror = start_registry(tmp_path / "mirror", config=config, port=port)
    # containerd's socket lives under the base: a short path keeps it within the unix socket limit.
    engine = start_dockerd(Path(tempfile.mkdtemp(prefix="dy-mirror-")), [f"--registry-mirror=http://127.0.0.1:{port}"])
    try:
        engine.docker("pull", "busybox:mirrored")
        inspected = engine.docker("image", "inspect", "--format", "{{.Id}}", "busybox:mirrored").stdout.strip()
        assert inspected == image.id
        assert metric(mirror, "dockyard_proxy_misses_total", upstream=upstream.proxy.address, kind="blob") >= 1
        # Pulled again after removing it: every blob comes from the cache.
        engine.docker("rmi", "busybox:mirrored")
        fetched = upstream.proxy.count("GET", "/blobs/")
        engine.docker("pull", "busybox:mirrored")
        assert upstream.proxy.count("GET", "/blobs/") == fetched
    finally:
        engine.stop()
        mirror.stop()


def test_podman_pulls_through_a_registries_conf_mirror(upstream: Upstream, tmp_path: Path) -> None:
    require_root()
    podman = require_tool("podman")
    image = push_image(
        tmp_path, upstream, "library/busybox", "pod", ImageSpec([layer(busybox_entries(["sh", "echo"]))])
    )
    proxy = {"upstreams": [{"prefix": "hub", "remoteurl": upstream.proxy.url}]}
    mirror = start_registry(tmp_path / "mirror", config=mirror_config(tmp_path / "mirror.yml", proxy))
    # The image's own registry is a closed loopback port: only the mirror can answer.
    origin = f"127.0.0.1:{free_port()}"
    conf = tmp_path / "registries.conf"
    conf.write_text(
        f'[[registry]]\nprefix = "{origin}"\nlocation = "{origin}"\ninsecure = true\n'
        f'[[registry.mirror]]\nlocation = "{mirror.address}/hub"\ninsecure = true\n'
    )
    runroot = Path(tempfile.mkdtemp(prefix="dy-pod-"))  # podman wants a short runroot
    storage = ["--root", str(tmp_path / "podroot"), "--runroot", str(runroot), "--storage-driver", "vfs"]
    env = {"CONTAINERS_REGISTRIES_CONF": str(conf), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path)}
    try:
        result = subprocess.run(
            [podman, *storage, "pull", f"{origin}/library/busybox:pod"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        result = subprocess.run(
            [podman, *storage, "image", "inspect", "--format", "{{.Id}}", f"{origin}/library/busybox:pod"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.stdout.strip() == image.id[7:]
        tags = httpx.get(f"{mirror.url}/v2/_catalog").json()["repositories"]
        assert "hub/library/busybox" in tags
    finally:
        subprocess.run([podman, *storage, "rmi", "-a", "-f"], capture_output=True, timeout=120, env=env)
        shutil.rmtree(runroot, ignore_errors=True)
        mirror.stop()
