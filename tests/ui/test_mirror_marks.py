"""Mirrored repositories are marked with their upstream: a real Dockyard pull-through cache in
front of CNCF distribution on loopback, with a local repository beside the cached one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.imagebuild import ImageSpec, file, layer
from tests.mirror.conftest import Upstream, distribution, push_image, running_mirror
from tests.servers import RegistryProcess
from tests.ui.images import push_image as push_local

pytestmark = pytest.mark.e2e
HTML = {"Accept": "text/html"}
ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"}
SPEC = ImageSpec([layer([file("hello.txt", b"mirrored hello\n")])])


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    with distribution(tmp_path / "upstream") as address:
        yield Upstream(address, None, None)  # type: ignore[arg-type]  # no fault proxy: nothing is injected


def mark_of(html: str) -> list[str]:
    return re.findall(r'<span class="badge mirror"[^>]*>([^<]*)</span>', html)


def row_of(html: str, name: str) -> str:
    found = re.search(rf'<th scope="row"><a href="/r/{re.escape(name)}">.*?</th>', html, re.S)
    assert found, f"no row for {name}"
    return found.group(0)


@pytest.fixture
def prefixed_mirror(tmp_path: Path, upstream: Upstream) -> Iterator[RegistryProcess]:
    push_image(tmp_path, upstream, "library/app", "v1", SPEC)
    proxy = {"upstreams": [{"prefix": "hub", "remoteurl": f"http://{upstream.address}"}]}
    with running_mirror(tmp_path, proxy, storage={"delete": {"enabled": True}}) as server:
        # Pulled once through the cache, so it is stored here; and a repository of our own beside it.
        assert httpx.get(f"{server.url}/v2/hub/library/app/manifests/v1", headers=ACCEPT).status_code == 200
        with httpx.Client(base_url=server.url) as client:
            push_local(client, "local/app", "v1", (b"a local layer",))
        yield server


def test_home_and_repository_page_mark_the_upstream_of_a_mirrored_repository(
    prefixed_mirror: RegistryProcess, upstream: Upstream
) -> None:
    home = httpx.get(f"{prefixed_mirror.url}/", headers=HTML).text
    expected = f"mirror of {upstream.address} (prefix hub/)"
    assert mark_of(row_of(home, "hub/library/app")) == [expected]
    assert mark_of(row_of(home, "local/app")) == []

    mirrored = httpx.get(f"{prefixed_mirror.url}/r/hub/library/app", headers=HTML).text
    assert mark_of(mirrored) == [expected]
    assert mark_of(httpx.get(f"{prefixed_mirror.url}/r/local/app", headers=HTML).text) == []


def test_deleting_from_a_mirror_is_offered_exactly_as_the_api_allows_it(prefixed_mirror: RegistryProcess) -> None:
    # The API deletes a cached manifest like a local one (the next pull fetches it again): the UI offers it too.
    page = httpx.get(f"{prefixed_mirror.url}/r/hub/library/app", headers=HTML).text
    assert 'aria-label="Delete tag v1"' in page
    digest = httpx.head(f"{prefixed_mirror.url}/v2/hub/library/app/manifests/v1", headers=ACCEPT)
    r = httpx.delete(f"{prefixed_mirror.url}/v2/hub/library/app/manifests/{digest.headers['docker-content-digest']}")
    assert r.status_code == 202, r.text


def test_a_whole_registry_mirror_marks_every_repository(tmp_path: Path, upstream: Upstream) -> None:
    push_image(tmp_path, upstream, "library/app", "v1", SPEC)
    with running_mirror(tmp_path, {"remoteurl": f"http://{upstream.address}"}) as server:
        assert httpx.get(f"{server.url}/v2/library/app/manifests/v1", headers=ACCEPT).status_code == 200
        home = httpx.get(f"{server.url}/", headers=HTML).text
        assert mark_of(row_of(home, "library/app")) == [f"mirror of {upstream.address}"]
        page = httpx.get(f"{server.url}/r/library/app", headers=HTML).text
        assert mark_of(page) == [f"mirror of {upstream.address}"]
