"""Listing workloads: a repository with 10,000 tags (full list, n=100 walk) and `_catalog` over 5,000
repositories. The stores are filled by writing distribution's layout directly (`bench.populate`)."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable

import orjson

from bench import populate
from bench.client import Client, Mismatch
from bench.servers import Server
from bench.workload import Context, Metric, Sample

TAG_REPO = "bench/tags"
CATALOG_PREFIX = "catalog"
_NEXT = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")


def walk(client: Client, path: str, key: str) -> tuple[list[str], int]:
    """Follow `Link: <…>; rel="next"` from `path`; returns every entry under `key` and the page count."""
    entries: list[str] = []
    pages = 0
    next_path: str | None = path
    while next_path is not None:
        response, body = client.call("GET", next_path)
        pages += 1
        entries.extend(orjson.loads(body)[key] or [])
        link = _NEXT.search(response.getheader("Link") or "")
        next_path = link.group(1) if link else None
        if pages > 100_000:
            raise Mismatch(f"{path}: pagination does not end")
    return entries, pages


def _repeat(times: int, work: Callable[[], int]) -> tuple[float, int]:
    """Median milliseconds of `times` runs of `work` (which returns a page count)."""
    durations = []
    pages = 0
    for _ in range(times):
        started = time.perf_counter()
        pages = work()
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations), pages


class TagList:
    name = "tags_list"
    title = "tags list of a repository with 10,000 tags"
    metrics: tuple[Metric, ...] = (
        Metric("full_ms", "full list", "ms", "latency"),
        Metric("page_ms", "first page, n=100", "ms", "latency"),
        Metric("paged_ms", "walk with n=100", "ms", "latency"),
        Metric("pages", "pages in the walk", "pages", "info"),
    )

    def prepare(self, context: Context, server: Server) -> None:
        fixtures = context.fixtures(server)
        fixtures.manifest()
        sizes = context.sizes
        self.title = f"tags list of a repository with {sizes.tags:,} tags (full; walk with n={sizes.tag_page})"
        page = Metric("page_ms", f"first page, n={sizes.tag_page}", "ms", "latency")
        paged = Metric("paged_ms", f"walk with n={sizes.tag_page}", "ms", "latency")
        self.metrics = (self.metrics[0], page, paged, self.metrics[3])
        self._tags = populate.write_tags(
            server.data_root,
            TAG_REPO,
            fixtures.manifest_digest,
            [fixtures.config_digest, fixtures.layer_digest],
            sizes.tags,
        )

    def run(self, context: Context, server: Server) -> Sample:
        sizes = context.sizes
        full_path = f"/v2/{TAG_REPO}/tags/list"
        paged_path = f"{full_path}?n={sizes.tag_page}"
        with Client(server.host, server.port) as client, context.measure(server) as usage:
            full_ms, _ = _repeat(sizes.listing_repeats, lambda: self._check(client, full_path))
            page_ms, _ = _repeat(sizes.listing_repeats, lambda: self._first_page(client, paged_path))
            paged_ms, pages = _repeat(sizes.listing_repeats, lambda: self._check(client, paged_path))
        values = {"full_ms": full_ms, "page_ms": page_ms, "paged_ms": paged_ms, "pages": pages}
        return Sample(values, usage)

    def _first_page(self, client: Client, path: str) -> int:
        _, body = client.call("GET", path)
        tags = orjson.loads(body)["tags"]
        # distribution 2.8 ignores n and answers the whole list: then the page is all of it.
        if tags != self._tags[: len(tags)] and sorted(tags) != self._tags:
            raise Mismatch(f"{path}: the first page is not the first tags")
        return 1

    def _check(self, client: Client, path: str) -> int:
        tags, pages = walk(client, path, "tags")
        if sorted(tags) != self._tags:
            raise Mismatch(f"{path}: {len(tags)} tags, expected {len(self._tags)}")
        return pages


class Catalog:
    name = "catalog"
    title = "_catalog over 5,000 repositories, pages of n=1000"
    metrics: tuple[Metric, ...] = (
        Metric("walk_ms", "catalog walk", "ms", "latency"),
        Metric("pages", "pages in the walk", "pages", "info"),
    )

    def prepare(self, context: Context, server: Server) -> None:
        sizes = context.sizes
        # n=1000 is the most distribution 2.8 answers by default (catalog.maxentries).
        self.title = f"_catalog over {sizes.repositories:,} repositories, pages of n={sizes.catalog_page}"
        fixtures = context.fixtures(server)
        fixtures.manifest()
        self._repos = populate.write_repositories(
            server.data_root, CATALOG_PREFIX, sizes.repositories, fixtures.layer_digest
        )

    def run(self, context: Context, server: Server) -> Sample:
        sizes = context.sizes
        path = f"/v2/_catalog?n={sizes.catalog_page}"
        with Client(server.host, server.port) as client, context.measure(server) as usage:
            walk_ms, pages = _repeat(sizes.listing_repeats, lambda: self._check(client, path))
        return Sample({"walk_ms": walk_ms, "pages": pages}, usage)

    def _check(self, client: Client, path: str) -> int:
        repos, pages = walk(client, path, "repositories")
        if repos != sorted(repos) or len(set(repos)) != len(repos):
            raise Mismatch(f"{path}: the walk is not sorted or repeats names")
        ours = [repo for repo in repos if repo.startswith(f"{CATALOG_PREFIX}/")]
        if ours != self._repos:
            raise Mismatch(f"{path}: {len(ours)} of {len(self._repos)} repositories listed")
        return pages
