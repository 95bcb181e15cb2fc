"""Runs every workload against every server alternately (A B A B …) and collects the samples."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import ceilings
from bench.listing import Catalog, TagList
from bench.load import ManifestLoad, SmallUploads
from bench.servers import DISTRIBUTION, Server, distribution_version
from bench.transfer import ChunkedPush, ManyPulls, MonolithicPush, ParallelPull, RangedPull, RawPull, SinglePull
from bench.ui import UiPages
from bench.workload import Context, Sample, Sizes, Workload


def all_workloads(sizes: Sizes) -> list[Workload]:
    workloads: list[Workload] = [
        MonolithicPush(),
        ChunkedPush(),
        SinglePull(),
        RawPull(),
        ParallelPull(),
        RangedPull(),
    ]
    workloads += [ManifestLoad(connections) for connections in sizes.wrk_connections]
    workloads += [SmallUploads(), TagList(), Catalog(), ManyPulls(), UiPages()]
    return workloads


@dataclass
class WorkloadResult:
    name: str
    title: str
    metrics: list[dict[str, str]]
    # server name -> one dict per round: metric key -> value
    rounds: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    usage: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    info: dict[str, list[dict[str, float | str]]] = field(default_factory=dict)
    error: str | None = None

    def median(self, server: str, key: str) -> float | None:
        values = [r[key] for r in self.rounds.get(server, []) if key in r]
        return statistics.median(values) if values else None


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "host": platform.node(),
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "distribution": distribution_version(),
    }


def run(
    servers: Sequence[Server],
    workloads: Sequence[Workload],
    context: Context,
    rounds: int,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    started = time.monotonic()
    progress("measuring the machine's ceilings")
    limits = ceilings.measure(context.workdir)
    progress(
        "  sha256 {sha256_mbps:,.0f} MB/s, loopback TCP {loopback_mbps:,.0f} MB/s, "
        "write+fsync {fsync_write_mbps:,.0f} MB/s".format(**limits)
    )
    results: list[WorkloadResult] = []
    for workload in workloads:
        result = WorkloadResult(workload.name, workload.title, [])
        results.append(result)
        # A workload of Dockyard's own features (the web UI) runs on the Dockyard servers only.
        measured = [s for s in servers if s.name != DISTRIBUTION or not getattr(workload, "dockyard_only", False)]
        try:
            for server in measured:
                workload.prepare(context, server)
            result.title = workload.title
            result.metrics = [asdict(metric) for metric in workload.metrics]
            progress(f"{workload.title}")
            for round_number in range(rounds):
                for server in measured:
                    sample = workload.run(context, server)
                    _record(result, server.name, sample)
                    progress(f"  round {round_number + 1} {server.name:12} {_brief(workload, sample)}")
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            progress(f"  FAILED: {result.error}")
            if os.environ.get("BENCH_TRACEBACK"):
                traceback.print_exc(file=sys.stderr)
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rounds": rounds,
        "sizes": asdict(context.sizes),
        "servers": {server.name: " ".join(server.command) for server in servers},
        "ceilings": limits,
        "seconds": round(time.monotonic() - started, 1),
        "workloads": [asdict(result) for result in results],
    }


def _record(result: WorkloadResult, server: str, sample: Sample) -> None:
    result.rounds.setdefault(server, []).append(sample.values)
    usage = sample.usage
    result.usage.setdefault(server, []).append(
        {
            "wall_seconds": usage.wall_seconds,
            "server_cpu_cores": usage.cores,
            "peak_rss_mib": usage.peak_rss_mib,
            "peak_pss_mib": usage.peak_pss_mib,
        }
    )
    if sample.info:
        result.info.setdefault(server, []).append(sample.info)


def _brief(workload: Workload, sample: Sample) -> str:
    parts = [f"{metric.label} {sample.values[metric.key]:,.1f} {metric.unit}" for metric in workload.metrics]
    parts.append(f"server CPU {sample.usage.cores:.2f} cores, RSS {sample.usage.peak_rss_mib:.0f} MiB")
    return "; ".join(parts)
