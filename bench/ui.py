"""The web UI's pages for a repository with 10,000 tags (Dockyard only: distribution has no UI).

Each measured page is a first visit: the tag pages are walked in order, so every request looks up
tags this server has not looked up before (the per-page cost), while the manifest all the tags
name is cached after the first page, as a manifest body is immutable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bench import populate
from bench.client import Client, Mismatch
from bench.servers import Server
from bench.workload import Context, Metric, Sample

UI_REPO = "bench/ui"
HOME_PREFIX = "uihome"
REPOSITORIES_PER_PAGE = 50  # registry.ui.pages.REPOSITORIES_PER_PAGE
TAGS_PER_PAGE = 50  # registry.ui.pages.TAGS_PER_PAGE


def _median_ms(calls: list[Callable[[], None]]) -> float:
    durations = []
    for call in calls:
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations)


class UiPages:
    name = "ui_pages"
    title = "web UI pages of a repository with 10,000 tags"
    dockyard_only = True
    metrics: tuple[Metric, ...] = (
        Metric("repository_ms", "repository page (50 tags, first visit)", "ms", "page"),
        Metric("filtered_ms", "repository page, tags filtered", "ms", "page"),
        Metric("manifest_ms", "manifest page", "ms", "page"),
        Metric("home_ms", "home page (50 repositories of 1,000, first visit)", "ms", "page"),
    )

    def prepare(self, context: Context, server: Server) -> None:
        fixtures = context.fixtures(server)
        fixtures.manifest()
        self.title = f"web UI pages of a repository with {context.sizes.tags:,} tags"
        self._tags = populate.write_tags(
            server.data_root,
            UI_REPO,
            fixtures.manifest_digest,
            [fixtures.config_digest, fixtures.layer_digest],
            context.sizes.tags,
        )
        # The home page lists repositories with their tag counts, sizes and last pushes.
        self._home_repos = [f"{HOME_PREFIX}/r{n:04d}" for n in range(max(context.sizes.repositories // 5, 1))]
        for name in self._home_repos:
            blobs = [fixtures.config_digest, fixtures.layer_digest]
            populate.write_tags(server.data_root, name, fixtures.manifest_digest, blobs, 3)
        home = f"home page ({REPOSITORIES_PER_PAGE} repositories of {len(self._home_repos):,}, first visit)"
        self.metrics = (*self.metrics[:3], Metric("home_ms", home, "ms", "page"))
        self._round = 0

    def run(self, context: Context, server: Server) -> Sample:
        pages = max(len(self._tags) // TAGS_PER_PAGE, 1)
        visits = min(20, pages)
        # Every round walks pages nobody has asked for yet (as far as there are any).
        first = (self._round * visits) % pages
        self._round += 1
        with Client(server.host, server.port) as client, context.measure(server) as usage:
            repository_ms = _median_ms(
                [lambda p=p: self._page(client, (first + p) % pages + 1) for p in range(visits)]  # type: ignore[misc]
            )
            probes = [self._tags[(i * 997) % len(self._tags)] for i in range(visits)]
            filtered_ms = _median_ms([lambda t=t: self._filtered(client, t) for t in probes])  # type: ignore[misc]
            manifest_ms = _median_ms([lambda t=t: self._manifest(client, t) for t in probes])  # type: ignore[misc]
            home_pages = max(len(self._home_repos) // REPOSITORIES_PER_PAGE, 1)
            home_ms = _median_ms(
                [lambda p=p: self._home(client, (first + p) % home_pages + 1) for p in range(min(visits, home_pages))]  # type: ignore[misc]
            )
        values = {"repository_ms": repository_ms, "filtered_ms": filtered_ms, "manifest_ms": manifest_ms}
        values["home_ms"] = home_ms
        return Sample(values, usage)

    def _get(self, client: Client, path: str) -> str:
        _, body = client.call("GET", path, Accept="text/html")
        return body.decode()

    def _page(self, client: Client, page: int) -> None:
        html = self._get(client, f"/r/{UI_REPO}?page={page}")
        expected = self._tags[(page - 1) * TAGS_PER_PAGE : page * TAGS_PER_PAGE]
        for tag in (expected[0], expected[-1]):
            if f'/-/manifest/{tag}"' not in html:
                raise Mismatch(f"UI page {page} of {UI_REPO} does not show tag {tag}")

    def _filtered(self, client: Client, tag: str) -> None:
        if f'/-/manifest/{tag}"' not in self._get(client, f"/r/{UI_REPO}?q={tag}"):
            raise Mismatch(f"filtering {UI_REPO} for {tag} does not show it")

    def _manifest(self, client: Client, tag: str) -> None:
        if '<h2 id="layers-heading">' not in self._get(client, f"/r/{UI_REPO}/-/manifest/{tag}"):
            raise Mismatch(f"the manifest page of {UI_REPO}:{tag} shows no layers")

    def _home(self, client: Client, page: int) -> None:
        html = self._get(client, f"/?q={HOME_PREFIX}/&page={page}")
        name = self._home_repos[(page - 1) * REPOSITORIES_PER_PAGE]
        row = f'<a href="/r/{name}">{name}</a></th>\n      <td class="num">3</td>'
        if row not in html:
            raise Mismatch(f"home page {page} does not list {name} with its 3 tags")
