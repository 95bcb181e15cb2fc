"""`dockyard mirror warm`: an image pre-filled (every platform) is pulled whole later with the
upstream out of reach."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faultproxy import Fault
from tests.imagebuild import ImageSpec, file, layer
from tests.mirror.conftest import Upstream, mirror_config, push_image, skopeo
from tests.servers import ROOT, start_registry

pytestmark = pytest.mark.e2e


def test_warm_then_pull_with_the_upstream_gone(upstream: Upstream, tmp_path: Path) -> None:
    specs = [
        ImageSpec([layer([file("arch", b"amd64" * 100)])], architecture="amd64"),
        ImageSpec([layer([file("arch", b"arm64" * 100)])], architecture="arm64", variant="v8"),
    ]
    image = push_image(tmp_path, upstream, "team/multi", "v1", specs)
    assert image.index is not None
    proxy = {"upstreams": [{"prefix": "up", "remoteurl": upstream.proxy.url}]}
    config = mirror_config(tmp_path / "warm.yml", proxy, storage={"filesystem": {"rootdirectory": str(tmp_path / "m")}})
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "mirror", "warm", "--config", str(config), "up/team/multi:v1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "warmed 3 manifest(s) and 4 blob(s)" in result.stdout

    upstream.proxy.inject(Fault("drop"))
    mirror = start_registry(tmp_path / "m", config=config)
    try:
        skopeo(
            "copy", "--all", "--src-tls-verify=false",
            f"docker://{mirror.address}/up/team/multi:v1", f"oci:{tmp_path / 'out'}:v1",
        )  # fmt: skip
        out = json.loads((tmp_path / "out" / "index.json").read_text())
        assert out["manifests"][0]["digest"] == "sha256:" + hashlib.sha256(image.index).hexdigest()
    finally:
        mirror.stop()
