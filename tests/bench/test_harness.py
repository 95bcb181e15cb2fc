"""The benchmark harness itself: one tiny run against Dockyard alone, and the wrk output parser."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import main
from bench.load import parse_wrk

WRK_OUTPUT = """\
Running 4s test @ http://127.0.0.1:5000/v2/bench/manifest/manifests/latest
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.53ms  420.11us  12.01ms   90.00%
    Req/Sec    21.05k     1.20k   23.00k    80.00%
  Latency Distribution
     50%    1.45ms
     75%    1.70ms
     90%    2.01ms
     99%  850.00us
  84000 requests in 4.00s, 70.50MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  21000.00
Transfer/sec:     17.62MB
"""


def test_parse_wrk() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result["rps"] == 21000.0
    assert result["p50_ms"] == 1.45
    assert result["p99_ms"] == 0.85
    assert result["requests"] == 84000
    assert result["bytes"] == 70.5 * 1024 * 1024
    assert result["non2xx"] == 3
    assert result["socket_errors"] == 0


def test_quick_run_against_dockyard(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--quick", "--rounds", "1", "--servers", "dockyard", "--workers", "1"]
    argv += ["--only", "push_chunked,pull_single,tags_list", "--out", str(out), "--workdir", str(tmp_path)]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["ceilings"]) == {"sha256_mbps", "loopback_mbps", "fsync_write_mbps"}
    assert [w["name"] for w in results["workloads"]] == ["push_chunked", "pull_single", "tags_list"]
    for workload in results["workloads"]:
        assert workload["error"] is None
        (values,) = workload["rounds"]["dockyard"]
        assert all(values[metric["key"]] > 0 for metric in workload["metrics"])
    assert (out / "results.png").stat().st_size > 0
