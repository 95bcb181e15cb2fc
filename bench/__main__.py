"""`python -m bench`: Dockyard against CNCF distribution, side by side, on loopback."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import report, runner, servers
from bench.load import wrk_binary
from bench.receivers import Receivers
from bench.workload import FULL, QUICK, Context, Workload

_MISSING = """\
bench: `docker-registry` (CNCF distribution, the reference) is not installed.
  Debian/Ubuntu:  apt-get install docker-registry
  or put a distribution 2.8 binary named docker-registry on PATH.
  To measure Dockyard alone: python -m bench --servers dockyard"""


# What `--notifications` measures: pushes, each of which queues an event per endpoint.
NOTIFICATION_WORKLOADS = ("push_monolithic", "push_chunked", "small_uploads")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="A/B rounds per workload (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the harness itself")
    parser.add_argument("--only", help="comma-separated workload names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument(
        "--servers",
        default=f"{servers.DOCKYARD},{servers.DISTRIBUTION}",
        help="which servers, in A/B order; extra variants: dockyard@N (N workers), dockyard-granian[@N]",
    )
    parser.add_argument("--workers", type=int, help="Dockyard worker processes (default: what `serve` picks)")
    parser.add_argument(
        "--dockyard-arg", action="append", default=[], metavar="ARG", help="extra argument for `dockyard serve`"
    )
    parser.add_argument(
        "--notifications",
        action="store_true",
        help=f"push throughput with two webhook endpoints ({servers.EVENTS}) against none ({servers.DOCKYARD})",
    )
    parser.add_argument("--wrk-seconds", type=float, help="duration of each wrk run")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where JSON and PNG go")
    parser.add_argument("--workdir", type=Path, help="parent of the temporary storage (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary storage and server logs")
    return parser


def _select(workloads: list[Workload], only: str | None) -> list[Workload]:
    if not only:
        return workloads
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    known = {workload.name for workload in workloads}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise SystemExit(f"bench: unknown workload(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [workload for workload in workloads if workload.name in wanted]


def _report(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(results, out / "results.json")
    print()
    print(report.summary(results))
    print()
    for ours in report.variants(results):
        print(report.table(results, ours))
        print()
    if servers.EVENTS in results["servers"] and servers.DOCKYARD in results["servers"]:
        print(report.overhead_table(results, servers.EVENTS, servers.DOCKYARD))
        print()
    try:
        report.write_chart(results, out / "results.png")
        print(f"\nwrote {out / 'results.json'} and {out / 'results.png'}")
    except ImportError:
        print(f"\nwrote {out / 'results.json'} (no chart: pip install matplotlib, or the `bench` extra)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.wrk_seconds:
        sizes = replace(sizes, wrk_seconds=args.wrk_seconds)
    if args.notifications:
        args.servers = f"{servers.DOCKYARD},{servers.EVENTS}"
        args.only = args.only or ",".join(NOTIFICATION_WORKLOADS)
    workloads = _select(runner.all_workloads(sizes), args.only)
    if args.list:
        for workload in workloads:
            print(f"{workload.name:22} {workload.title}")
        return 0
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    if servers.DISTRIBUTION in names and servers.distribution_binary() is None:
        print(_MISSING, file=sys.stderr)
        return 2
    if any(w.name.startswith("manifest_get") for w in workloads) and wrk_binary() is None:
        print("bench: `wrk` is not installed (apt-get install wrk); it drives the manifest GET load.", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir=args.workdir))
    started: list[servers.Server] = []
    receivers = Receivers(2) if servers.EVENTS in names else None
    try:
        for name in names:
            if name == servers.DOCKYARD:
                server = servers.dockyard(workdir, args.workers, args.dockyard_arg)
            elif name == servers.EVENTS and receivers is not None:
                server = servers.dockyard(workdir, args.workers, args.dockyard_arg, name, receivers.config())
            elif name.startswith(f"{servers.DOCKYARD}@"):  # a variant: dockyard@N runs N workers
                server = servers.dockyard(workdir, int(name.partition("@")[2]), args.dockyard_arg, name=name)
            elif name.partition("@")[0] == servers.GRANIAN:  # the same app under granian (@N: N workers)
                workers = int(name.partition("@")[2]) if "@" in name else args.workers
                server = servers.dockyard_granian(workdir, workers, name=name)
            elif name == servers.DISTRIBUTION:
                server = servers.distribution(workdir)
            else:
                raise SystemExit(f"bench: unknown server {name!r}")
            server.start()
            started.append(server)
            print(f"{server.name} on {server.url} (pid {server.pid}, {len(server.pids())} processes)")
        context = Context(sizes, workdir)
        results = runner.run(started, workloads, context, args.rounds)
    finally:
        for server in started:
            server.stop()
        if receivers is not None:
            print(f"webhook receivers took {receivers.received} events")
            receivers.stop()
        if args.keep:
            print(f"storage and logs kept in {workdir}")
        else:
            # rm is much faster than shutil.rmtree on the listing workloads' tens of thousands of directories.
            subprocess.run(["rm", "-rf", "--", str(workdir)], check=False)
    _report(results, args.out)
    return 1 if any(w["error"] for w in results["workloads"]) else 0


if __name__ == "__main__":
    sys.exit(main())
