"""How stored objects are read and how events are cut into requests."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from registry.config import ConfigError, load_config
from registry.events.formats import CLOUDEVENTS_BATCH_MEDIA_TYPE, CLOUDEVENTS_MEDIA_TYPE, bodies
from registry.events.model import ENVELOPE_MEDIA_TYPE
from registry.events.queue import Sequence, event_count, object_name, parse, seq_time


def _event(number: int, padding: int = 0) -> dict[str, object]:
    return {"id": f"id-{number}", "action": "push", "target": {"repository": "app", "tag": "x" * padding}}


def test_objects_old_and_new_read_as_lists_of_events() -> None:
    one = _event(1)
    assert parse(orjson.dumps(one)) == [one]  # before batching: one event per object
    assert parse(orjson.dumps([one, _event(2)])) == [one, _event(2)]
    assert parse(b"[]") == []
    for broken in (b"not json", b'{"no": "id"}', b'[{"id": "a"}, 3]', b'"text"'):
        assert parse(broken) is None


def test_object_names_carry_the_event_count_and_sort_in_write_order() -> None:
    sequence = Sequence()
    names = [object_name(sequence.next(), count) for count in (3, 1, 12)]
    assert names == sorted(names)
    assert [event_count(name) for name in names] == [3, 1, 12]
    old = sequence.next()  # the name an object had before batching: no count, one event
    assert event_count(old) == 1
    assert abs(seq_time(names[0]) - seq_time(old)) < 60


def test_distribution_envelopes_hold_up_to_maxevents_in_order() -> None:
    events = [_event(n) for n in range(7)]
    requests = list(bodies(events, "distribution", 3))
    assert [count for _, _, count in requests] == [3, 3, 1]
    assert all(content_type == ENVELOPE_MEDIA_TYPE for _, content_type, _ in requests)
    sent = [event for body, _, _ in requests for event in orjson.loads(body)["events"]]
    assert sent == events


def test_a_request_stops_short_of_the_byte_limit_but_never_goes_empty() -> None:
    big = [_event(n, padding=600) for n in range(4)]
    requests = list(bodies(big, "distribution", 100, max_bytes=1500))
    assert [count for _, _, count in requests] == [2, 2]
    alone = list(bodies(big[:2], "distribution", 100, max_bytes=10))
    assert [count for _, _, count in alone] == [1, 1]


def test_cloudevents_one_structured_event_per_request_or_batch_mode() -> None:
    events = [_event(n) for n in range(3)]
    single = list(bodies(events, "cloudevents", 1))
    assert [content_type for _, content_type, _ in single] == [CLOUDEVENTS_MEDIA_TYPE] * 3
    assert [orjson.loads(body)["id"] for body, _, _ in single] == ["id-0", "id-1", "id-2"]
    (batch,) = bodies(events, "cloudevents", 5)
    body, content_type, count = batch
    assert content_type == CLOUDEVENTS_BATCH_MEDIA_TYPE and count == 3
    assert [item["data"] for item in orjson.loads(body)] == events


def test_maxevents_defaults_per_format_and_rejects_negatives(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    section = (
        "version: 0.1\nnotifications:\n  endpoints:\n"
        "    - {name: a, url: 'http://127.0.0.1:1/'}\n"
        "    - {name: b, url: 'http://127.0.0.1:1/', format: cloudevents}\n"
        "    - {name: c, url: 'http://127.0.0.1:1/', maxevents: 1}\n"
    )
    path.write_text(section)
    endpoints = load_config(path, {}).notifications.endpoints
    assert [endpoint.max_events for endpoint in endpoints] == [100, 1, 1]
    path.write_text(section.replace("maxevents: 1", "maxevents: -1"))
    with pytest.raises(ConfigError, match="maxevents"):
        load_config(path, {})
