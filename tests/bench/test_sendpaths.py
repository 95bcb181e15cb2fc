"""`python -m bench.sendpaths` runs, sends every byte each way, and reports every way."""

from __future__ import annotations

import subprocess
import sys

from bench.sendpaths import WAYS


def test_sendpaths_reports_every_way() -> None:
    for extra in ([], ["--hash"]):
        result = subprocess.run(
            [sys.executable, "-m", "bench.sendpaths", "--size-mib", "4", "--runs", "1", *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert ("hashes" in lines[0]) == bool(extra)
        assert [line.split(":")[0].strip() for line in lines[1:]] == list(WAYS)
        assert all("MB/s" in line for line in lines[1:])
