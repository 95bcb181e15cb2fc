"""The UI's pieces on their own: signed sessions and CSRF tokens, the Store's bulk tag lookup on
both kinds of backend, and the summaries cached by digest."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from oci.digest import Digest
from registry.store import Store
from registry.ui.model import UiModel
from registry.ui.session import Session, SessionCodec, session_key
from storage_backends.filesystem import FilesystemBackend
from storage_backends.memory import MemoryBackend
from tests.ui.images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, digest_of, image_config


def test_session_round_trip_and_tampering() -> None:
    codec = SessionCodec(b"k" * 32)
    session = Session.new("alice", "stamp", 60)
    value = codec.encode(session)
    assert codec.decode(value) == Session(session.id, "alice", "stamp", float(int(session.expires)))
    body, mac = value.split(".")
    assert codec.decode(body + "x." + mac) is None
    assert codec.decode(value + "x") is None
    assert SessionCodec(b"o" * 32).decode(value) is None  # another key
    assert codec.decode(codec.encode(Session("i", "alice", "s", time.time() - 1))) is None  # expired
    assert codec.decode("") is None and codec.decode("a.b.c") is None


def test_csrf_token_is_bound_to_the_session() -> None:
    codec = SessionCodec(b"k" * 32)
    one, two = Session.anonymous(60), Session.anonymous(60)
    assert codec.csrf_valid(one, codec.csrf_token(one))
    assert not codec.csrf_valid(one, codec.csrf_token(two))
    assert not codec.csrf_valid(one, None) and not codec.csrf_valid(one, "")


def test_session_key_sources(tmp_path: Path) -> None:
    assert session_key("secret", None, False) == session_key("secret", str(tmp_path), True)
    first = session_key("", str(tmp_path), True)
    assert session_key("", str(tmp_path), True) == first  # every worker reads the same file
    key_file = tmp_path / "dockyard" / "ui" / "session.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert session_key("", None, False) != session_key("", None, False)


async def _push(store: Store, name: str, tags: list[str]) -> Digest:
    config = image_config()
    layer = b"layer"
    for blob in (config, layer):

        async def chunks(data: bytes = blob):  # type: ignore[no-untyped-def]
            yield data

        await store.uploads.put_blob(name, chunks(), digest_of(blob))
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}],
        }
    ).encode()
    result = await store.put_manifest(name, tags[0], body, OCI_MANIFEST, tags[1:])
    return result.digest


@pytest.mark.parametrize("kind", ["memory", "filesystem"])
async def test_bulk_tag_links_match_single_lookups(kind: str, tmp_path: Path) -> None:
    backend = MemoryBackend() if kind == "memory" else FilesystemBackend(str(tmp_path))
    store = Store(backend, delete_enabled=True)
    digest = await _push(store, "team/app", ["a", "b", "c"])
    links = await store.tag_links("team/app", ["a", "b", "c", "missing", "../bad"])
    assert set(links) == {"a", "b", "c"}
    for tag, (found, pushed) in links.items():
        single = await store.tag_link("team/app", tag)
        assert found == digest == single[0] and pushed == single[1]
    await store.delete_manifest("team/app", "b")
    assert set(await store.tag_links("team/app", ["a", "b"])) == {"a"}


async def test_model_forgets_tags_after_its_own_writes() -> None:
    store = Store(MemoryBackend(), delete_enabled=True)
    model = UiModel(store)
    await _push(store, "team/app", ["a", "b"])
    assert set(await model.tag_links("team/app", ["a", "b"])) == {"a", "b"}
    await store.delete_manifest("team/app", "b")
    assert set(await model.tag_links("team/app", ["a", "b"])) == {"a"}
    rows = await model.tag_rows("team/app", ["a"])
    assert rows[0].summary is not None and rows[0].summary.platforms == ("linux/amd64",)
    assert rows[0].summary.created == "2026-11-30T10:20:30Z"


@pytest.mark.parametrize("kind", ["memory", "filesystem"])
async def test_blob_totals_count_every_blob_once(kind: str, tmp_path: Path) -> None:
    backend = MemoryBackend() if kind == "memory" else FilesystemBackend(str(tmp_path))
    store = Store(backend, delete_enabled=True)
    assert await store.blob_totals() == (0, 0)
    digest = await _push(store, "team/app", ["a"])
    await _push(store, "team/other", ["b"])  # the same three blobs again, in another repository
    body = (await store.get_manifest("team/app", str(digest))).body
    assert await store.blob_totals() == (3, len(image_config()) + len(b"layer") + len(body))


def test_mirror_marks_follow_the_caches_routing() -> None:
    from registry.config import ProxyConfig, UpstreamConfig
    from registry.ui.mirrors import MirrorMark, MirrorMarks

    assert MirrorMarks(None).of("library/app") is None
    assert MirrorMarks(ProxyConfig()).of("library/app") is None  # a `proxy` section with no upstream
    whole = MirrorMarks(ProxyConfig(remoteurl="https://upstream.example:5443"))
    assert whole.of("any/name") == MirrorMark("upstream.example:5443", "")
    prefixed = MirrorMarks(
        ProxyConfig(upstreams=[UpstreamConfig(remoteurl="https://registry-1.docker.io", prefix="hub", default=True)])
    )
    hub = prefixed.of("hub/library/nginx")
    assert hub == MirrorMark("registry-1.docker.io", "hub")
    assert hub.text == "mirror of registry-1.docker.io (prefix hub/)"
    # Unprefixed names are local even with a default upstream: the cache stores what it fetches under the prefix.
    assert prefixed.of("library/nginx") is None and prefixed.of("hubble/app") is None
