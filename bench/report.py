"""The results as a Markdown table (printed and pasted into bench/README.md), JSON and a PNG chart."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import orjson

from bench.servers import DISTRIBUTION, DOCKYARD

RSS_LIMIT_MIB = 150.0
PAGE_LIMIT_MS = 50.0
CEILING_SHARE = 0.6
# Issue 17: whole-blob pulls at least 1.2x distribution; every other throughput at least level.
PULL_RATIO = 1.2
PULL_WORKLOADS = frozenset({"pull_single", "pull_raw", "pull_parallel", "pull_many"})


def _median(workload: dict[str, Any], server: str, key: str) -> float | None:
    values = [r[key] for r in workload["rounds"].get(server, []) if key in r]
    return statistics.median(values) if values else None


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def verdict(kind: str, ours: float | None, ratio: float | None, workload: str = "") -> str:
    """The target for a metric and whether it is met: ✓ met, ✗ missed, blank: no target."""
    if kind == "throughput" and ratio is not None:
        goal = PULL_RATIO if workload in PULL_WORKLOADS else 1.0
        return f"≥ {goal:.1f} {'✓' if ratio >= goal else '✗'}"
    if kind == "latency" and ratio is not None:
        return f"≤ 1.0 {'✓' if ratio <= 1.0 else '✗'}"
    if kind == "page" and ours is not None:
        return f"< {PAGE_LIMIT_MS:.0f} {'✓' if ours < PAGE_LIMIT_MS else '✗'}"
    if kind == "memory" and ours is not None:
        return f"< {RSS_LIMIT_MIB:.0f} {'✓' if ours < RSS_LIMIT_MIB else '✗'}"
    return ""


def _ceiling(workload: dict[str, Any], unit: str, ceilings: dict[str, float]) -> tuple[str, float] | None:
    if unit != "MB/s":
        return None
    if workload["name"].startswith("push"):
        return "sha256", ceilings["sha256_mbps"]
    if workload["name"].startswith("pull"):
        return "loopback", ceilings["loopback_mbps"]
    return None


def rows(results: dict[str, Any], ours: str = DOCKYARD) -> list[dict[str, Any]]:
    """One row per (workload, metric) with medians, ratio, target verdict and share of the ceiling;
    `ours` is the Dockyard variant compared with distribution (a name from `--servers`)."""
    out: list[dict[str, Any]] = []
    for workload in results["workloads"]:
        if workload["error"]:
            out.append({"workload": workload["title"], "error": workload["error"]})
            continue
        for metric in workload["metrics"]:
            mine = _median(workload, ours, metric["key"])
            theirs = _median(workload, DISTRIBUTION, metric["key"])
            ratio = _ratio(mine, theirs)
            row: dict[str, Any] = {
                "workload": workload["title"],
                "name": workload["name"],
                "metric": metric["label"],
                "key": metric["key"],
                "unit": metric["unit"],
                "kind": metric["kind"],
                DOCKYARD: mine,
                DISTRIBUTION: theirs,
                "ratio": ratio,
                "target": verdict(metric["kind"], mine, ratio, workload["name"]),
            }
            ceiling = _ceiling(workload, metric["unit"], results["ceilings"])
            if ceiling is not None and mine is not None:
                share = mine / ceiling[1]
                row["ceiling"] = f"{share:.0%} of {ceiling[0]}"
                if workload["name"] in ("push_monolithic", "push_chunked", "pull_single", "pull_raw"):
                    row["ceiling"] += " ✓" if share >= CEILING_SHARE else " ✗"
            out.append(row)
    return out


def variants(results: dict[str, Any]) -> list[str]:
    """The Dockyard servers of a run (`dockyard`, and any `dockyard@N` variants), in run order."""
    return [name for name in results["servers"] if name != DISTRIBUTION]


def table(results: dict[str, Any], ours: str = DOCKYARD) -> str:
    heading = "Dockyard" if ours == DOCKYARD else ours
    lines = [
        f"| workload | metric | unit | {heading} | distribution | ratio | target | {heading} vs ceiling |",
        "|---|---|---|--:|--:|--:|---|---|",
    ]
    previous = None
    for row in rows(results, ours):
        title = row["workload"] if row["workload"] != previous else ""
        previous = row["workload"]
        if "error" in row:
            lines.append(f"| {title} | FAILED: {row['error']} | | | | | | |")
            continue
        lines.append(
            f"| {title} | {row['metric']} | {row['unit']} | {_fmt(row[DOCKYARD])} | {_fmt(row[DISTRIBUTION])} "
            f"| {_fmt(row['ratio'])} | {row['target']} | {row.get('ceiling', '')} |"
        )
    return "\n".join(lines)


# `--notifications`: pushes with two webhook endpoints stay within this share of none (issue 14).
OVERHEAD_TARGET = 0.10


def overhead_table(results: dict[str, Any], variant: str, base: str) -> str:
    """`variant` against `base` (two Dockyard servers), per throughput metric: the ratio and whether it
    is within OVERHEAD_TARGET."""
    lines = [
        f"| workload | metric | unit | {base} | {variant} | ratio | within {OVERHEAD_TARGET:.0%} |",
        "|---|---|---|--:|--:|--:|---|",
    ]
    for workload in results["workloads"]:
        if workload["error"]:
            lines.append(f"| {workload['title']} | FAILED: {workload['error']} | | | | | |")
            continue
        for metric in workload["metrics"]:
            theirs = _median(workload, base, metric["key"])
            mine = _median(workload, variant, metric["key"])
            ratio = _ratio(mine, theirs)
            ok = (
                ""
                if ratio is None or metric["kind"] != "throughput"
                else ("✓" if ratio >= 1 - OVERHEAD_TARGET else "✗")
            )
            lines.append(
                f"| {workload['title']} | {metric['label']} | {metric['unit']} | {_fmt(theirs)} | {_fmt(mine)} "
                f"| {_fmt(ratio)} | {ok} |"
            )
    return "\n".join(lines)


def summary(results: dict[str, Any]) -> str:
    machine = results["machine"]
    limits = results["ceilings"]
    peaks: dict[str, float] = {}
    for workload in results["workloads"]:
        for server, usages in workload["usage"].items():
            for usage in usages:
                peaks[server] = max(peaks.get(server, 0.0), usage["peak_rss_mib"])
    lines = [
        f"{results['date']} on {machine['host']}: {machine['cpu']}, {machine['cores']} cores, "
        f"Linux {machine['kernel']}, Python {machine['python']}, {machine['distribution']}; "
        f"{results['rounds']} rounds A/B, medians, {results['seconds']:.0f} s in all.",
        f"Ceilings: sha256 {limits['sha256_mbps']:,.0f} MB/s (one core), loopback TCP "
        f"{limits['loopback_mbps']:,.0f} MB/s, write+fsync {limits['fsync_write_mbps']:,.0f} MB/s. MB = 10^6 bytes.",
        "Peak server RSS over all workloads (all processes summed): "
        + ", ".join(f"{server} {peak:.0f} MiB" for server, peak in peaks.items()),
    ]
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_bytes(orjson.dumps({**results, "rows": rows(results)}, option=orjson.OPT_INDENT_2))


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Bars of Dockyard's advantage per metric (ratio, inverted for latencies); right of 1 = faster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels: list[str] = []
    advantages: list[float] = []
    for row in rows(results):
        if "error" in row or row["ratio"] is None or row["kind"] not in ("throughput", "latency"):
            continue
        labels.append(f"{row['name']}: {row['metric']}")
        advantages.append(row["ratio"] if row["kind"] == "throughput" else 1 / row["ratio"])
    figure, axes = plt.subplots(figsize=(9, 0.36 * len(labels) + 1.6))
    colours = ["#2e7d32" if value >= 1.0 else "#c62828" for value in advantages]
    positions = list(range(len(labels)))[::-1]
    axes.barh(positions, advantages, color=colours)
    axes.set_yticks(positions, labels, fontsize=8)
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xscale("log")
    axes.set_xlabel("Dockyard's advantage (throughput ratio, inverse latency ratio); > 1: Dockyard faster")
    for position, value in zip(positions, advantages, strict=True):
        axes.text(value, position, f" {value:.2f}x", va="center", fontsize=8)
    axes.set_title(f"Dockyard vs CNCF distribution, {results['date'][:10]}, {results['machine']['cores']} cores")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
