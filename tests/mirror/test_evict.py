"""`maxsize`: `dockyard gc` drops the least recently pulled cached repositories until the upstream's
cache fits, then frees the blobs nothing else uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.mirror.conftest import Upstream, big_layer_image, blob_file, mirror_config, push_image, skopeo, stored
from tests.servers import ROOT, start_registry

pytestmark = pytest.mark.e2e


def test_gc_evicts_the_least_recently_pulled_repository_over_maxsize(upstream: Upstream, tmp_path: Path) -> None:
    old = push_image(tmp_path, upstream, "team/old", "v1", big_layer_image("old"))
    new = push_image(tmp_path, upstream, "team/new", "v1", big_layer_image("new"))
    shared = old.layers[1]
    assert shared.digest == new.layers[1].digest  # both images carry the same busybox layer
    proxy = {"upstreams": [{"prefix": "up", "remoteurl": upstream.proxy.url, "maxsize": "8MiB"}]}
    config = mirror_config(tmp_path / "mirror.yml", proxy, gc={"graceperiod": "0s"})
    mirror = start_registry(tmp_path / "mirror", config=config)
    try:
        for repo in ("team/old", "team/new"):  # pulled in this order: team/old is the least recent
            skopeo(
                "copy",
                "--src-tls-verify=false",
                f"docker://{mirror.address}/up/{repo}:v1",
                f"oci:{tmp_path / repo.replace('/', '-')}:x",
            )
        for repo, image in (("up/team/old", old), ("up/team/new", new)):
            for pulled in image.layers:
                stored(mirror, repo, pulled.digest)
        env = {**os.environ, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(mirror.root)}
        result = subprocess.run(
            [sys.executable, "-m", "dockyard", "gc", "--config", str(config)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "evicted cached repository up/team/old" in result.stdout
        assert "up/team/new" not in result.stdout
        assert not blob_file(mirror, old.layers[0].digest).exists()
        assert blob_file(mirror, new.layers[0].digest).read_bytes() == new.layers[0].blob
        assert blob_file(mirror, shared.digest).exists()  # still used by the repository that stays

        # The evicted image is simply a miss again.
        fetched = upstream.proxy.count("GET", f"/blobs/{old.layers[0].digest}")
        r = httpx.get(f"{mirror.url}/v2/up/team/old/blobs/{old.layers[0].digest}", timeout=60)
        assert r.status_code == 200 and r.content == old.layers[0].blob
        assert upstream.proxy.count("GET", f"/blobs/{old.layers[0].digest}") == fetched + 1
    finally:
        mirror.stop()
