"""What a workload is: its metrics, its per-server setup, and one timed, verified run.

The shared fixtures (the blobs every pull reads, the manifest the load test fetches) are pushed
once per server through the API, untimed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

from bench.client import Client, sha256_digest
from bench.monitor import Monitor, Usage
from bench.servers import Server

MiB = 1024 * 1024

# "throughput": higher is better, target ratio >= 1; "latency": lower is better, target ratio <= 1;
# "memory": lower is better, target an absolute ceiling; "page": a web UI page, target an absolute
# latency (it has no counterpart in distribution); "info": no target.
Kind = Literal["throughput", "latency", "memory", "page", "info"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    kind: Kind


@dataclass
class Sample:
    values: dict[str, float]
    usage: Usage
    info: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sizes:
    blob: int = 256 * MiB
    chunk: int = 8 * MiB
    parallel_pulls: int = 8
    many_pulls: int = 64
    many_pull_blob: int = 32 * MiB
    ranges: int = 64
    range_size: int = 1 * MiB
    small_count: int = 500
    small_size: int = 4096
    small_concurrency: int = 16
    tags: int = 10_000
    tag_page: int = 100
    repositories: int = 5_000
    catalog_page: int = 1_000
    listing_repeats: int = 5
    wrk_seconds: float = 4.0
    wrk_connections: tuple[int, ...] = (32, 256)
    wrk_threads: int = 1


FULL = Sizes()
# For the harness's own smoke test: every workload, tiny.
QUICK = replace(
    FULL,
    blob=8 * MiB,
    chunk=2 * MiB,
    parallel_pulls=2,
    many_pulls=4,
    many_pull_blob=1 * MiB,
    ranges=4,
    small_count=20,
    small_concurrency=4,
    tags=150,
    tag_page=100,
    repositories=60,
    catalog_page=50,
    listing_repeats=1,
    wrk_seconds=1.0,
    wrk_connections=(8,),
)


@dataclass
class Blob:
    data: bytes
    digest: str

    @classmethod
    def random(cls, size: int) -> Blob:
        data = os.urandom(size)
        return cls(data, sha256_digest(data))


class Context:
    """Everything a run shares: sizes, the work directory, the test data, per-server fixtures."""

    def __init__(self, sizes: Sizes, workdir: Path) -> None:
        self.sizes = sizes
        self.workdir = workdir
        self.pull_blob = Blob.random(sizes.blob)
        self.many_blob = Blob.random(sizes.many_pull_blob)
        self._push = bytearray(self.pull_blob.data)
        self._pushes = 0
        self._fixtures: dict[str, Fixtures] = {}

    def push_blob(self) -> tuple[memoryview, str]:
        """A blob of the push size that no server has seen (a fresh stamp in its first bytes)."""
        self._pushes += 1
        self._push[:16] = f"push{self._pushes:012d}".encode()
        return memoryview(self._push), sha256_digest(self._push)

    def fixtures(self, server: Server) -> Fixtures:
        if server.name not in self._fixtures:
            self._fixtures[server.name] = Fixtures(self, server)
        return self._fixtures[server.name]

    @staticmethod
    def measure(server: Server) -> Monitor:
        return Monitor(server.pids)


class Fixtures:
    """Content pushed once per server through the API (untimed) and read by several workloads."""

    PULL_REPO = "bench/pull"
    MANIFEST_REPO = "bench/manifest"

    def __init__(self, context: Context, server: Server) -> None:
        self._context = context
        self._server = server
        self._done: set[str] = set()
        self.config_digest = ""
        self.layer_digest = ""
        self.manifest_digest = ""

    def client(self) -> Client:
        return Client(self._server.host, self._server.port)

    def pull_blobs(self) -> None:
        if "pull" in self._done:
            return
        with self.client() as client:
            for blob in (self._context.pull_blob, self._context.many_blob):
                client.push_monolithic(self.PULL_REPO, blob.data, blob.digest)
        self._done.add("pull")

    def manifest(self) -> None:
        """A small image (config + one 4 KiB layer) tagged `latest`, what a manifest GET returns."""
        if "manifest" in self._done:
            return
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        layer = hashlib.sha256(b"bench layer").digest() * 128
        self.config_digest, self.layer_digest = sha256_digest(config), sha256_digest(layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": self.layer_digest, "size": len(layer)}],
        }
        body = json.dumps(manifest, indent=3).encode()
        with self.client() as client:
            client.push_monolithic(self.MANIFEST_REPO, config, self.config_digest)
            client.push_monolithic(self.MANIFEST_REPO, layer, self.layer_digest)
            self.manifest_digest = client.put_manifest(self.MANIFEST_REPO, "latest", body, OCI_MANIFEST)
        if self.manifest_digest != sha256_digest(body):
            raise RuntimeError(f"{self._server.name}: manifest digest {self.manifest_digest}")
        self.manifest_body = body
        self._done.add("manifest")


class Workload(Protocol):
    name: str
    title: str
    metrics: tuple[Metric, ...]

    def prepare(self, context: Context, server: Server) -> None:
        """Untimed setup on one server, once before the rounds."""

    def run(self, context: Context, server: Server) -> Sample:
        """One timed run; raises `Mismatch` when the server answers wrongly."""
