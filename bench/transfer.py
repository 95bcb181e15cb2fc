"""Blob transfer workloads: pushes (monolithic, chunked) and pulls (single, parallel, ranged, many)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.client import BUFFER, Client
from bench.servers import Server
from bench.workload import Context, Fixtures, Metric, MiB, Sample

_MBPS = "MB/s"
RSS = Metric("peak_rss_mib", "server peak RSS (sum)", "MiB", "memory")
PSS = Metric("peak_pss_mib", "server peak PSS (sum)", "MiB", "memory")


def _mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def _memory(sample: Sample) -> Sample:
    sample.values[RSS.key] = sample.usage.peak_rss_mib
    sample.values[PSS.key] = sample.usage.peak_pss_mib
    return sample


class MonolithicPush:
    name = "push_monolithic"
    title = "push 256 MiB, monolithic (POST + PUT)"
    metrics: tuple[Metric, ...] = (Metric("mbps", "push", _MBPS, "throughput"), RSS, PSS)

    def prepare(self, context: Context, server: Server) -> None:
        self.title = f"push {context.sizes.blob // MiB} MiB, monolithic (POST + PUT)"

    def run(self, context: Context, server: Server) -> Sample:
        data, digest = context.push_blob()
        with Client(server.host, server.port) as client, context.measure(server) as usage:
            client.push_monolithic("bench/push", data, digest)
        return _memory(Sample({"mbps": _mbps(len(data), usage.wall_seconds)}, usage))


class ChunkedPush:
    name = "push_chunked"
    title = "push 256 MiB in 8 MiB PATCHes"
    metrics: tuple[Metric, ...] = (Metric("mbps", "push", _MBPS, "throughput"), RSS, PSS)

    def prepare(self, context: Context, server: Server) -> None:
        sizes = context.sizes
        self.title = f"push {sizes.blob // MiB} MiB in {sizes.chunk // MiB} MiB PATCHes"

    def run(self, context: Context, server: Server) -> Sample:
        data, digest = context.push_blob()
        with Client(server.host, server.port) as client, context.measure(server) as usage:
            client.push_chunked("bench/push", data, digest, context.sizes.chunk)
        return _memory(Sample({"mbps": _mbps(len(data), usage.wall_seconds)}, usage))


def _parallel_pulls(server: Server, count: int, work: Callable[[Client, bytearray], int]) -> None:
    """`count` pulls at once, each on its own connection and thread."""
    start = threading.Barrier(count + 1)

    def one() -> int:
        with Client(server.host, server.port) as client:
            buffer = bytearray(BUFFER)
            start.wait()
            return work(client, buffer)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(one) for _ in range(count)]
        start.wait()
        for future in futures:
            future.result()


class SinglePull:
    name = "pull_single"
    title = "pull 256 MiB, one stream, sha256 verified"
    metrics: tuple[Metric, ...] = (Metric("mbps", "pull", _MBPS, "throughput"),)

    def prepare(self, context: Context, server: Server) -> None:
        context.fixtures(server).pull_blobs()
        self.title = f"pull {context.sizes.blob // MiB} MiB, one stream, sha256 verified"

    def run(self, context: Context, server: Server) -> Sample:
        blob = context.pull_blob
        buffer = bytearray(BUFFER)
        with Client(server.host, server.port) as client, context.measure(server) as usage:
            client.pull(Fixtures.PULL_REPO, blob.digest, len(blob.data), buffer)
        return Sample({"mbps": _mbps(len(blob.data), usage.wall_seconds)}, usage)


class RawPull:
    """The same pull without hashing in the client, whose sha256 would otherwise bound the figure:
    the server's own pace, to read against the loopback ceiling. The length is checked; the digest
    of the same bytes is checked by `pull_single`."""

    name = "pull_raw"
    title = "pull 256 MiB, one stream, length checked only"
    metrics: tuple[Metric, ...] = (Metric("mbps", "pull", _MBPS, "throughput"),)

    def prepare(self, context: Context, server: Server) -> None:
        context.fixtures(server).pull_blobs()
        self.title = f"pull {context.sizes.blob // MiB} MiB, one stream, length checked only (no client hash)"

    def run(self, context: Context, server: Server) -> Sample:
        blob = context.pull_blob
        buffer = bytearray(BUFFER)
        with Client(server.host, server.port) as client, context.measure(server) as usage:
            client.pull(Fixtures.PULL_REPO, blob.digest, len(blob.data), buffer, verify=False)
        return Sample({"mbps": _mbps(len(blob.data), usage.wall_seconds)}, usage)


class ParallelPull:
    name = "pull_parallel"
    title = "8 parallel pulls of 256 MiB, sha256 verified"
    metrics: tuple[Metric, ...] = (Metric("mbps", "aggregate pull", _MBPS, "throughput"),)

    def prepare(self, context: Context, server: Server) -> None:
        context.fixtures(server).pull_blobs()
        sizes = context.sizes
        self.title = f"{sizes.parallel_pulls} parallel pulls of {sizes.blob // MiB} MiB, sha256 verified"

    def run(self, context: Context, server: Server) -> Sample:
        blob, count = context.pull_blob, context.sizes.parallel_pulls
        with context.measure(server) as usage:
            _parallel_pulls(
                server, count, lambda client, buf: client.pull(Fixtures.PULL_REPO, blob.digest, len(blob.data), buf)
            )
        return Sample({"mbps": _mbps(count * len(blob.data), usage.wall_seconds)}, usage)


class RangedPull:
    name = "pull_range"
    title = "ranged pulls: 64 x 1 MiB at random offsets, one connection"
    metrics: tuple[Metric, ...] = (Metric("per_s", "ranged GETs", "req/s", "throughput"),)

    def prepare(self, context: Context, server: Server) -> None:
        context.fixtures(server).pull_blobs()
        sizes = context.sizes
        self.title = f"ranged pulls: {sizes.ranges} x {sizes.range_size // MiB} MiB at random offsets"

    def run(self, context: Context, server: Server) -> Sample:
        blob, sizes = context.pull_blob, context.sizes
        picker = random.Random(3)
        starts = [picker.randrange(0, len(blob.data) - sizes.range_size) for _ in range(sizes.ranges)]
        view = memoryview(blob.data)
        with Client(server.host, server.port) as client, context.measure(server) as usage:
            for start in starts:
                end = start + sizes.range_size - 1
                client.pull_range(Fixtures.PULL_REPO, blob.digest, start, end, view[start : end + 1])
        return Sample({"per_s": sizes.ranges / usage.wall_seconds}, usage)


class ManyPulls:
    name = "pull_many"
    title = "64 concurrent pulls of 32 MiB, sha256 verified"
    metrics: tuple[Metric, ...] = (Metric("mbps", "aggregate pull", _MBPS, "throughput"), RSS, PSS)

    def prepare(self, context: Context, server: Server) -> None:
        context.fixtures(server).pull_blobs()
        sizes = context.sizes
        self.title = f"{sizes.many_pulls} concurrent pulls of {sizes.many_pull_blob // MiB} MiB, sha256 verified"

    def run(self, context: Context, server: Server) -> Sample:
        blob, count = context.many_blob, context.sizes.many_pulls
        with context.measure(server) as usage:
            _parallel_pulls(
                server, count, lambda client, buf: client.pull(Fixtures.PULL_REPO, blob.digest, len(blob.data), buf)
            )
        return _memory(Sample({"mbps": _mbps(count * len(blob.data), usage.wall_seconds)}, usage))
