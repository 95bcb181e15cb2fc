"""`dockyard gc` as a separate process against a running `dockyard serve` with two workers: it
frees exactly what nothing reaches, and while it runs over and over, clients push, delete and push
the same content again; no pull of a tagged manifest ever fails."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import ROOT, RegistryProcess, start_registry

pytestmark = pytest.mark.e2e

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_blob(c: httpx.Client, name: str, data: bytes) -> None:
    r = c.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    r = c.put(r.headers["location"], params={"digest": _digest(data)}, content=data)
    assert r.status_code == 201, r.text


def _manifest(config: bytes, layers: list[bytes]) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(x), "size": len(x)}
            for x in layers
        ],
    }
    return json.dumps(doc).encode()


def _push_image(c: httpx.Client, name: str, tag: str, config: bytes, layers: list[bytes]) -> str:
    """Like a client: HEAD each blob and upload the missing ones, then the manifest. Retries when
    GC deleted a blob between the HEAD and the manifest (the registry refuses the manifest)."""
    body = _manifest(config, layers)
    for attempt in range(10):
        time.sleep(0.3 * attempt)  # back off, as a user pushing again would
        for blob in (config, *layers):
            if c.head(f"/v2/{name}/blobs/{_digest(blob)}").status_code != 200:
                _push_blob(c, name, blob)
        r = c.put(f"/v2/{name}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
        if r.status_code == 201:
            return _digest(body)
        assert r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN", r.text
    raise AssertionError("push kept failing")


def _pull(c: httpx.Client, name: str, reference: str) -> None:
    r = c.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, f"{name}:{reference} manifest: {r.status_code} {r.text}"
    doc = r.json()
    for blob in [doc["config"], *doc["layers"]]:
        got = c.get(f"/v2/{name}/blobs/{blob['digest']}")
        assert got.status_code == 200, f"{name} blob {blob['digest']}: {got.status_code} {got.text}"
        assert _digest(got.content) == blob["digest"]


def _gc(server: RegistryProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(server.root)}
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_gc_command_frees_exactly_the_unreachable(tmp_path: Path) -> None:
    server = start_registry(tmp_path / "data", workers=2)
    try:
        with httpx.Client(base_url=server.url) as c:
            _push_image(c, "cli/app", "keep", b'{"n":1}', [b"kept layer", b"shared layer"])
            gone = _push_image(c, "cli/app", "drop", b'{"n":2}', [b"dropped layer", b"shared layer"])
            assert c.delete(f"/v2/cli/app/manifests/{gone}").status_code == 202
            expected = {gone, _digest(b'{"n":2}'), _digest(b"dropped layer")}

            dry = _gc(server, "--grace-period", "0s", "--dry-run")
            assert dry.returncode == 0, dry.stderr
            assert all(f"would delete blob {d}" in dry.stdout for d in expected)
            assert dry.stdout.count("would delete blob") == 3
            _pull(c, "cli/app", "keep")

            real = _gc(server, "--grace-period", "0s", "--json")
            assert real.returncode == 0, real.stderr
            report = json.loads(real.stdout)
            assert set(report["blobs"]) == expected
            assert report["bytes_freed"] == sum(report["blobs"].values())
            _pull(c, "cli/app", "keep")
            assert c.head(f"/v2/cli/app/blobs/{_digest(b'dropped layer')}").status_code == 404
            assert json.loads(_gc(server, "--grace-period", "0s", "--json").stdout)["blobs_deleted"] == 0
    finally:
        server.stop()


def test_push_delete_push_while_gc_runs(tmp_path: Path) -> None:
    server = start_registry(tmp_path / "data", workers=2)
    stop = threading.Event()
    runs: list[dict[str, Any]] = []
    failures: list[str] = []

    def collect_forever() -> None:
        while not stop.is_set():
            result = _gc(server, "--grace-period", "0.5s", "--delete-untagged", "--json")
            if result.returncode != 0:
                failures.append(f"gc failed: {result.stderr[-2000:]}")
                return
            runs.append(json.loads(result.stdout))

    def client(worker: int) -> None:
        name = f"online/{worker}"
        try:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                for round_ in range(24):
                    variant = round_ % 3
                    layers = [f"layer {worker} {variant}".encode() * 1000, b"common layer" * 1000]
                    digest = _push_image(c, name, "current", f'{{"w":{worker},"v":{variant}}}'.encode(), layers)
                    _pull(c, name, "current")
                    if round_ % 2:
                        assert c.delete(f"/v2/{name}/manifests/{digest}").status_code == 202
                    # let content age past the grace period, so re-pushes meet the sweep
                    time.sleep(0.3)
        except AssertionError as exc:
            failures.append(str(exc))

    collector = threading.Thread(target=collect_forever)
    collector.start()
    clients = [threading.Thread(target=client, args=(w,)) for w in range(3)]
    try:
        for t in clients:
            t.start()
        for t in clients:
            t.join(300)
    finally:
        stop.set()
        collector.join(300)
    try:
        assert failures == []
        assert len(runs) >= 2 and sum(r["blobs_deleted"] for r in runs) > 0
        with httpx.Client(base_url=server.url) as c:
            for worker in range(3):
                for tag in c.get(f"/v2/online/{worker}/tags/list").json().get("tags") or []:
                    _pull(c, f"online/{worker}", tag)
    finally:
        server.stop()
