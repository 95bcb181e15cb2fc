"""`dockyard events tail` follows the events a running server queues."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.events.client import push_blob
from tests.events.conftest import write_config
from tests.servers import ROOT, running_registry, wait_for

pytestmark = pytest.mark.e2e


def test_tail_prints_new_events_as_json_lines(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yml", [])  # no endpoints: the tail alone takes events
    root = tmp_path / "data"
    env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root), "PYTHONPATH": str(ROOT)}
    with running_registry(root, config=config) as server, httpx.Client(base_url=server.url) as client:
        tail = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "events", "tail", "--config", str(config)],
            cwd=ROOT,
            env={**env, "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(tail.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        try:
            # Until the server has seen the tail, its events are not queued for it: push until one shows.
            count = 0

            def shown() -> bool:
                nonlocal count
                count += 1
                push_blob(client, "warmup", f"warmup {count}".encode())
                return bool(lines)

            wait_for(shown, 30, "the tail's first event")
            digest = push_blob(client, "team/app", b"followed")
            wait_for(lambda: any(digest in line for line in lines), 30, "the followed event")
        finally:
            tail.terminate()
            tail.wait(10)
    event = next(json.loads(line) for line in lines if digest in line)
    assert event["action"] == "push" and event["target"]["repository"] == "team/app"
    # The tail unregistered itself on the way out (SIGTERM).
    assert tail.returncode == 0
    assert not list((root / "dockyard" / "events" / "tails").glob("*/alive"))
