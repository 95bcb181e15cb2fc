"""`http.net: unix`: `dockyard serve` listens on the socket at `http.addr`, not on TCP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.servers import ROOT, wait_for

pytestmark = pytest.mark.e2e


def test_serves_on_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "dockyard.sock"
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
                "http": {"net": "unix", "addr": str(sock), "workers": 1},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "DOCKYARD_HTTP"))}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "serve", str(config)], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        client = httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://registry")

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(log.read_text())
            return client.get("/v2/").status_code == 200

        wait_for(up, 30, "dockyard serve on a unix socket")
        assert client.post("/v2/u/app/blobs/uploads/").status_code == 202
        assert f"http+unix://{sock}" in log.read_text()
    finally:
        process.terminate()
        process.wait(20)
