"""The home page's storage summary shows the last garbage collection: "never" on a fresh store,
then what a real `dockyard gc` run against the same storage freed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.servers import ROOT, start_registry, wait_for
from tests.ui.images import digest_of, image_config, push_image

pytestmark = pytest.mark.e2e
HTML = {"Accept": "text/html"}


def summary_of(html: str, field: str) -> str:
    found = re.search(rf'<dd id="{field}">([^<]*)</dd>', html)
    assert found, f"no {field} in the storage summary"
    return found.group(1)


def dockyard_gc(root: Path, *args: str) -> str:
    env = {**os.environ, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root)}
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", "--grace-period", "0s", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_home_shows_the_last_gc_run_and_what_it_freed(tmp_path: Path) -> None:
    server = start_registry(tmp_path / "data")
    try:
        with httpx.Client(base_url=server.url) as client:
            push_image(client, "gc/app", "keep", (b"kept layer",))
            # Both images share the config blob: only the dropped layer and the manifest are freed.
            gone = push_image(client, "gc/app", "drop", (b"dropped layer, 23 bytes",))
            assert client.delete(f"/v2/gc/app/manifests/{gone.digest}").status_code == 202
            untagged = push_image(client, "gc/app", None, (b"untagged layer",))  # only --delete-untagged frees it
            assert summary_of(client.get("/", headers=HTML).text, "last-gc") == "never"

            dockyard_gc(server.root, "--dry-run")
            home = client.get("/", headers=HTML).text
            assert summary_of(home, "last-gc").endswith("UTC (dry run)")
            freed = len(b"dropped layer, 23 bytes") + len(gone.body)
            assert summary_of(home, "gc-freed") == f"{freed} B in 2 blobs, 0 manifests deleted"
            assert "Would have freed" in home

            dockyard_gc(server.root, "--delete-untagged")
            home = client.get("/", headers=HTML).text
            assert "(dry run)" not in summary_of(home, "last-gc")
            freed += len(b"untagged layer") + len(untagged.body)
            assert summary_of(home, "gc-freed") == f"{freed} B in 4 blobs, 1 manifest deleted"
            assert client.get(f"/v2/gc/app/blobs/{digest_of(b'dropped layer, 23 bytes')}").status_code == 404
            assert client.get(f"/v2/gc/app/blobs/{digest_of(image_config())}").status_code == 200
    finally:
        server.stop()


def test_the_servers_own_gc_runs_are_shown_too(tmp_path: Path) -> None:
    # Pushed before the loop runs: with no grace period a run would take a push's blobs mid-way.
    server = start_registry(tmp_path / "data")
    try:
        with httpx.Client(base_url=server.url) as client:
            gone = push_image(client, "gc/app", "drop", (b"dropped by the server's loop",))
            assert client.delete(f"/v2/gc/app/manifests/{gone.digest}").status_code == 202
    finally:
        server.stop()
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"gc": {"interval": "1s", "graceperiod": "0s"}}))
    server = start_registry(tmp_path / "data", config=config)
    try:
        with httpx.Client(base_url=server.url) as client:

            def ran() -> bool:
                return summary_of(client.get("/", headers=HTML).text, "last-gc") != "never"

            wait_for(ran, 60, "the server's gc run on the home page")
            home = client.get("/", headers=HTML).text
            # Later runs free nothing more and replace the record, so only its shape is fixed here.
            assert summary_of(home, "last-gc").endswith(" UTC") and "Freed" in home
            assert re.fullmatch(r"[\d.]+ [KMG]?i?B in \d+ blobs?, 0 manifests deleted", summary_of(home, "gc-freed"))
            layer = digest_of(b"dropped by the server's loop")
            assert client.get(f"/v2/gc/app/blobs/{layer}").status_code == 404
    finally:
        server.stop()
