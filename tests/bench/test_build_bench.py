"""`python -m bench.build --quick` runs: one round of each builder and push, and a table naming them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import require_busybox, require_root, require_tool
from tests.servers import ROOT

pytestmark = [pytest.mark.privileged, pytest.mark.e2e]


def test_quick_build_bench_runs() -> None:
    require_root()
    require_tool("dockerd")
    require_tool("docker")
    require_busybox()
    result = subprocess.run(
        [sys.executable, "-m", "bench.build", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = ["dockyard build: cold", "dockyard build: cached", "dockyard push", "docker build (classic): cold"]
    if os.path.isfile("/usr/bin/docker"):  # Debian's docker.io CLI drives the engine's BuildKit
        rows += ["docker build (BuildKit): cold", "docker build (BuildKit): cached"]
    for row in rows:
        assert row in result.stdout
