"""Compiled seccomp filters kept in the runtime root: the same program as a fresh compile, one
entry per set of inputs, a damaged or unwritable cache costing only the compile."""

from __future__ import annotations

from pathlib import Path

from runtime.seccomp import DEFAULT, UNCONFINED, filter_for
from runtime.security import DEFAULT_CAPS
from tests.runtime.conftest import IMAGE, Dockyard


def test_a_cached_filter_is_the_compiled_one(tmp_path: Path) -> None:
    fresh = filter_for(DEFAULT, DEFAULT_CAPS)
    assert fresh is not None
    assert filter_for(DEFAULT, DEFAULT_CAPS, tmp_path) == fresh
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1
    assert filter_for(DEFAULT, DEFAULT_CAPS, tmp_path) == fresh
    assert list(tmp_path.iterdir()) == entries


def test_other_capabilities_are_another_entry(tmp_path: Path) -> None:
    fewer = [c for c in DEFAULT_CAPS if c != "CAP_CHOWN"]
    assert filter_for(DEFAULT, fewer, tmp_path) == filter_for(DEFAULT, fewer)
    assert filter_for(DEFAULT, [*DEFAULT_CAPS, "CAP_SYS_ADMIN"], tmp_path) == filter_for(
        DEFAULT, [*DEFAULT_CAPS, "CAP_SYS_ADMIN"]
    )
    assert len(list(tmp_path.iterdir())) == 2
    assert filter_for(UNCONFINED, DEFAULT_CAPS, tmp_path) is None


def test_a_damaged_entry_is_compiled_again(tmp_path: Path) -> None:
    fresh = filter_for(DEFAULT, DEFAULT_CAPS, tmp_path)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(entry.read_bytes()[:-3])  # cut mid-instruction
    assert filter_for(DEFAULT, DEFAULT_CAPS, tmp_path) == fresh
    assert filter_for(DEFAULT, DEFAULT_CAPS, tmp_path) == fresh


def test_an_unwritable_cache_still_gives_the_filter(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    assert filter_for(DEFAULT, DEFAULT_CAPS, blocked / "seccomp") == filter_for(DEFAULT, DEFAULT_CAPS)


def test_containers_run_under_the_cached_filter(dy: Dockyard) -> None:
    for _ in range(2):
        result = dy.run(IMAGE, "grep", "^Seccomp:", "/proc/self/status", check=True)
        assert result.stdout.split() == ["Seccomp:", "2"]
    assert len(list((dy.root / "cache" / "seccomp").iterdir())) == 1


def test_an_entry_for_another_key_is_not_used(tmp_path: Path) -> None:
    """Entries are named by a checksum of their key: one holding another key (a collision, or a
    file put there) is compiled over, never installed."""
    fresh = filter_for(DEFAULT, DEFAULT_CAPS, tmp_path)
    assert fresh is not None
    (entry,) = tmp_path.iterdir()
    other = filter_for(DEFAULT, ["CAP_KILL"])
    assert other is not None and other != fresh
    data = entry.read_bytes()
    key_length = int.from_bytes(data[:4], "little")
    key = data[8 : 8 + key_length]
    forged = key.replace(b"CAP_CHOWN", b"CAP_CHOWM")
    entry.write_bytes(len(forged).to_bytes(4, "little") + data[4:8] + forged + other.program)
    assert filter_for(DEFAULT, DEFAULT_CAPS, tmp_path) == fresh
