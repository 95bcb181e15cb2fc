"""Request-rate workloads: manifest GETs by tag under wrk, and many small uploads at once.

wrk (C, epoll) runs with one thread, so it can use at most one core; its own CPU time, taken from
wait4's rusage, is reported as a share of that core to show whether the client was the limit.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

from bench.client import Client, Mismatch, sha256_digest
from bench.servers import Server
from bench.workload import Context, Fixtures, Metric, Sample

# Docker sends these as separate Accept lines; one comma-joined line means the same.
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/json",
    )
)
_LUA = f'wrk.method = "GET"\nwrk.headers["Accept"] = "{ACCEPT}"\n'

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_SIZES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


class WrkError(RuntimeError):
    """wrk is missing or its output could not be read."""


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise WrkError(f"unreadable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    """requests/s, p50/p99 latency (ms), requests, bytes read, non-2xx/3xx count, socket errors."""
    result: dict[str, float] = {}
    for percent, key in (("50", "p50_ms"), ("99", "p99_ms")):
        match = re.search(rf"^\s+{percent}%\s+(\S+)", output, re.MULTILINE)
        if match is None:
            raise WrkError(f"no {percent}% latency in wrk output: {output[-500:]}")
        result[key] = _ms(match.group(1))
    match = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+)(\w+) read", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None or rate is None:
        raise WrkError(f"no totals in wrk output: {output[-500:]}")
    result["requests"] = float(match.group(1))
    result["bytes"] = float(match.group(3)) * _SIZES.get(match.group(4), 1)
    result["rps"] = float(rate.group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non2xx"] = float(bad.group(1)) if bad else 0.0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = float(sum(int(g) for g in errors.groups())) if errors else 0.0
    return result


def wrk_binary() -> str | None:
    return shutil.which("wrk")


class ManifestLoad:
    """GET /v2/<name>/manifests/latest from N keep-alive connections (wrk)."""

    _path = f"/v2/{Fixtures.MANIFEST_REPO}/manifests/latest"

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.name = f"manifest_get_c{connections}"
        self.title = f"manifest GET by tag, {connections} connections (wrk)"
        self.metrics: tuple[Metric, ...] = (
            Metric("rps", "requests", "req/s", "throughput"),
            Metric("p50_ms", "p50 latency", "ms", "latency"),
            Metric("p99_ms", "p99 latency", "ms", "latency"),
            Metric("client_cpu", "wrk CPU (of its 1 thread)", "%", "info"),
        )

    def prepare(self, context: Context, server: Server) -> None:
        if wrk_binary() is None:
            raise WrkError("wrk not found (apt-get install wrk)")
        fixtures = context.fixtures(server)
        fixtures.manifest()
        self._script = context.workdir / "accept.lua"
        self._script.write_text(_LUA)
        # One GET checked by hand: status, digest header and body, before the load.
        with fixtures.client() as client:
            response, body = client.call("GET", self._path, Accept=ACCEPT)
        if body != fixtures.manifest_body or response.getheader("Docker-Content-Digest") != fixtures.manifest_digest:
            raise Mismatch(f"{server.name}: manifest GET returned the wrong manifest")
        self._body_size = len(body)

    def run(self, context: Context, server: Server) -> Sample:
        sizes = context.sizes
        command = [
            wrk_binary() or "wrk",
            f"-t{sizes.wrk_threads}",
            f"-c{self.connections}",
            f"-d{sizes.wrk_seconds:g}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(self._script),
            f"{server.url}{self._path}",
        ]
        with context.measure(server) as usage:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert process.stdout is not None
            output = process.stdout.read()
            _, status, rusage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise WrkError(f"wrk failed ({process.returncode}): {output[-500:]}")
        result = parse_wrk(output)
        if result["non2xx"] or result["socket_errors"] or result["requests"] == 0:
            raise Mismatch(
                f"{server.name}: wrk saw {result['non2xx']:.0f} bad statuses, "
                f"{result['socket_errors']:.0f} socket errors"
            )
        if result["bytes"] / result["requests"] < self._body_size:
            raise Mismatch(f"{server.name}: responses shorter than the manifest")
        client_cpu = (rusage.ru_utime + rusage.ru_stime) / usage.wall_seconds / sizes.wrk_threads * 100
        values = {key: result[key] for key in ("rps", "p50_ms", "p99_ms")}
        values["client_cpu"] = client_cpu
        return Sample(values, usage, {"requests": result["requests"]})


class SmallUploads:
    name = "small_uploads"
    title = "500 uploads of 4 KiB (POST + PUT), 16 at a time"
    metrics: tuple[Metric, ...] = (Metric("per_s", "uploads", "uploads/s", "throughput"),)

    def prepare(self, context: Context, server: Server) -> None:
        sizes = context.sizes
        self.title = (
            f"{sizes.small_count} uploads of {sizes.small_size // 1024} KiB (POST + PUT), "
            f"{sizes.small_concurrency} at a time"
        )
        self._round = 0

    def run(self, context: Context, server: Server) -> Sample:
        sizes = context.sizes
        self._round += 1
        jobs: queue.SimpleQueue[tuple[bytes, str]] = queue.SimpleQueue()
        for _ in range(sizes.small_count):
            data = os.urandom(sizes.small_size)
            jobs.put((data, sha256_digest(data)))
        start = threading.Barrier(sizes.small_concurrency + 1)

        def worker() -> int:
            done = 0
            with Client(server.host, server.port) as client:
                start.wait()
                while True:
                    try:
                        data, digest = jobs.get_nowait()
                    except queue.Empty:
                        return done
                    client.push_monolithic(f"bench/small{self._round}", data, digest)
                    done += 1

        with ThreadPoolExecutor(sizes.small_concurrency) as pool:
            futures = [pool.submit(worker) for _ in range(sizes.small_concurrency)]
            with context.measure(server) as usage:
                start.wait()
                done = sum(future.result() for future in futures)
        if done != sizes.small_count:
            raise Mismatch(f"{server.name}: {done} of {sizes.small_count} uploads done")
        return Sample({"per_s": done / usage.wall_seconds}, usage)
