"""The `notifications` section: distribution's keys load, bad ones stop the start naming the key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from registry.config import ConfigError, load_config
from registry.events.deliver import retry_delay
from registry.events.formats import signature
from registry.events.model import references, timestamp

DISTRIBUTION_SECTION = """
notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      disabled: false
      url: https://my.listener.com/event
      headers:
        Authorization: [Bearer <your token>]
      timeout: 1s
      threshold: 10
      backoff: 1s
      ignoredmediatypes:
        - application/octet-stream
      ignore:
        mediatypes:
           - application/octet-stream
        actions:
           - pull
"""


def test_distributions_documented_section_loads_without_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yml"
    path.write_text(DISTRIBUTION_SECTION)
    with caplog.at_level(logging.WARNING):
        config = load_config(path, {})
    assert "notifications" not in caplog.text
    (endpoint,) = config.notifications.endpoints
    assert config.notifications.events.includereferences
    assert endpoint.header_pairs == [("Authorization", "Bearer <your token>")]
    assert endpoint.timeout == 1.0 and endpoint.threshold == 10 and endpoint.backoff == 1.0
    assert endpoint.format == "distribution" and endpoint.secret == ""
    assert not endpoint.wants("pull", "application/vnd.oci.image.manifest.v1+json")
    assert not endpoint.wants("push", "application/octet-stream")
    assert endpoint.wants("push", "application/vnd.oci.image.manifest.v1+json")
    assert endpoint.wants("delete", "")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("endpoints: [{url: 'http://x/'}]", "needs a name"),
        ("endpoints: [{name: a, url: 'ftp://x/'}]", "endpoints[a].url"),
        ("endpoints: [{name: a, url: 'http://x/'}, {name: a, url: 'http://y/'}]", "two endpoints are named 'a'"),
        ("endpoints: [{name: a, url: 'http://x/', ignore: {actions: [fetch]}}]", "ignore.actions: 'fetch'"),
        ("endpoints: [{name: a, url: 'http://x/', format: xml}]", "format"),
        ("endpoints: [{name: a, url: 'http://x/', timeout: soon}]", "timeout"),
        ("endpoints: [{name: a, url: 'http://x/', threshold: 0}]", "threshold"),
        ("endpoints: [{name: a, url: 'http://x/', headers: {'bad name': [x]}}]", "headers.bad name"),
        (
            "endpoints: [{name: a, url: 'http://x/', retries: 3}]",
            "unknown config key notifications.endpoints[0].retries",
        ),
    ],
)
def test_bad_endpoints_are_refused(tmp_path: Path, section: str, message: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text("notifications:\n  " + section + "\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(path, {})


def test_backoff_waits_after_threshold_failures_doubling_to_a_cap() -> None:
    delays = [retry_delay(failures, 3, 1.0) for failures in range(1, 12)]
    assert delays == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 64.0, 64.0]


def test_timestamps_are_gos_rfc3339nano() -> None:
    assert timestamp(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert timestamp(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert timestamp(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_index_references_are_its_manifests_with_their_platforms() -> None:
    body = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":['
        b'{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":5,'
        b'"platform":{"architecture":"amd64","os":"linux"}}]}'
    )
    assert references(body) == [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 5,
            "digest": "sha256:aa",
            "platform": {"architecture": "amd64", "os": "linux"},
        }
    ]


def test_signature_is_hmac_sha256_hex() -> None:
    # RFC 4231 test case 2.
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert signature("Jefe", b"what do ya want for nothing?") == f"sha256={expected}"
