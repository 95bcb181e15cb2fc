"""`python -m bench.build --quick` runs: one round of each builder and push, and a table naming them."""

from __future__ import annotations

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
    for row in ("dockyard build: cold", "dockyard build: cached", "dockyard push", "docker build (classic): cold"):
        assert row in result.stdout
