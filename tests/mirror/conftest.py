"""Real upstreams for the pull-through cache: CNCF distribution (`docker-registry`) on loopback,
plain or with htpasswd, behind the tests' fault-injecting proxy, and a Dockyard mirror in front."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from tests.conftest import require_tool
from tests.faultproxy import FaultProxy, fault_proxy
from tests.imagebuild import Image, ImageSpec, busybox_entries, file, layer, push, write_layout
from tests.servers import RegistryProcess, free_port, start_registry, wait_for

UPSTREAM_USER = ("mirror-bot", "upstream secret pw 7f3a")
BIG_LAYER_SIZE = 6 * 1024 * 1024


@dataclass
class Upstream:
    address: str  # distribution itself
    proxy: FaultProxy  # what the mirror talks to
    creds: str | None  # user:password for pushing, when it has htpasswd


@contextmanager
def distribution(base: Path, htpasswd: bool = False, extra: dict[str, Any] | None = None) -> Iterator[str]:
    binary = require_tool("docker-registry")
    port = free_port()
    base.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(base / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if htpasswd:
        users = HtpasswdFile(base / "htpasswd", rounds=4)
        users.set_password(*UPSTREAM_USER)
        config["auth"] = {"htpasswd": {"realm": "upstream", "path": str(base / "htpasswd")}}
    config.update(extra or {})
    path = base / "distribution.yml"
    path.write_text(yaml.safe_dump(config))
    log = open(base / "distribution.log", "wb")
    process = subprocess.Popen([binary, "serve", str(path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code in (200, 401),
            30,
            "docker-registry",
        )
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(20)
        log.close()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    with distribution(tmp_path / "upstream") as address, fault_proxy(address) as proxy:
        yield Upstream(address, proxy, None)


def mirror_config(path: Path, proxy: dict[str, Any], **extra: Any) -> Path:
    path.write_text(yaml.safe_dump({"version": "0.1", "proxy": proxy, **extra}))
    return path


@contextmanager
def running_mirror(tmp_path: Path, proxy: dict[str, Any], workers: int = 1, **extra: Any) -> Iterator[RegistryProcess]:
    name = f"mirror-{free_port()}"
    config = mirror_config(tmp_path / f"{name}.yml", proxy, **extra)
    server = start_registry(tmp_path / name, config=config, workers=workers)
    try:
        yield server
    finally:
        server.stop()


def big_layer_image(seed: str = "big") -> ImageSpec:
    """An image with one large layer that does not compress (random-looking bytes)."""
    data = b"".join(hashlib.sha256(f"{seed}{i}".encode()).digest() for i in range(BIG_LAYER_SIZE // 32))
    return ImageSpec([layer([file("data.bin", data)], compress=False), layer(busybox_entries(["sh"]))])


def push_image(tmp_path: Path, upstream: Upstream, repo: str, tag: str, spec: ImageSpec | list[ImageSpec]) -> Image:
    layout = tmp_path / f"layout-{repo.replace('/', '_')}-{tag}"
    image = write_layout(layout, spec, tag=tag)
    require_tool("skopeo")
    push(layout, tag, f"{upstream.address}/{repo}:{tag}", creds=upstream.creds, multi=isinstance(spec, list))
    return image


def blob_file(server: RegistryProcess, digest: str) -> Path:
    algorithm, hex_ = digest.split(":")
    return server.root / "docker" / "registry" / "v2" / "blobs" / algorithm / hex_[:2] / hex_ / "data"


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    require_tool("skopeo")
    env = {**os.environ, "HOME": os.environ.get("HOME", "/root")}
    result = subprocess.run(
        ["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180, env=env
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def metric(server: RegistryProcess, name: str, **labels: str) -> float:
    """One sample from the server's /metrics (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{server.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def stored(server: RegistryProcess, repo: str, digest: str) -> bytes:
    """The blob's bytes in the server's storage once its fill has been committed and linked into `repo`
    (clients get the last byte when the digest has matched, a moment before that)."""
    algorithm, hex_ = digest.split(":")
    link = server.root / "docker" / "registry" / "v2" / "repositories" / repo / "_layers" / algorithm / hex_ / "link"
    wait_for(lambda: blob_file(server, digest).exists() and link.exists(), 60, f"{digest} stored")
    return blob_file(server, digest).read_bytes()
