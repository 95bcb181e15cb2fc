"""Platform parsing and choosing a manifest from an index (image-index.md)."""

from __future__ import annotations

from typing import Any

import pytest

from oci.platform import InvalidPlatform, NoMatchingPlatform, Platform, select_manifest


def _entry(digest: str, os: str = "linux", arch: str = "amd64", variant: str | None = None) -> dict[str, Any]:
    platform: dict[str, Any] = {"os": os, "architecture": arch}
    if variant:
        platform["variant"] = variant
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "platform": platform}


INDEX = [
    _entry("amd64"),
    _entry("arm-v6", arch="arm", variant="v6"),
    _entry("arm-v7", arch="arm", variant="v7"),
    _entry("arm64", arch="arm64", variant="v8"),
    _entry("windows", os="windows"),
    {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "attestation",
        "platform": {"os": "unknown", "architecture": "unknown"},
    },  # an attestation manifest, as BuildKit writes them
]


@pytest.mark.parametrize(
    ("wanted", "digest"),
    [
        ("linux/amd64", "amd64"),
        ("linux/arm64", "arm64"),
        ("linux/arm64/v8", "arm64"),
        ("linux/arm/v7", "arm-v7"),
        ("linux/arm/v6", "arm-v6"),
        ("linux/arm", "arm-v6"),  # no variant asked: the first arm entry
        ("windows/amd64", "windows"),
        ("LINUX/x86_64", "amd64"),
    ],
)
def test_select(wanted: str, digest: str) -> None:
    assert select_manifest(INDEX, Platform.parse(wanted))["digest"] == digest


def test_default_variant_matches_unlabelled_entry() -> None:
    index = [_entry("plain-arm64", arch="arm64")]
    assert select_manifest(index, Platform.parse("linux/arm64/v8"))["digest"] == "plain-arm64"


def test_no_match_lists_what_exists() -> None:
    with pytest.raises(NoMatchingPlatform, match=r"linux/s390x.*linux/amd64"):
        select_manifest(INDEX, Platform.parse("linux/s390x"))


def test_entries_without_platform_never_match() -> None:
    with pytest.raises(NoMatchingPlatform):
        select_manifest([{"digest": "x"}], Platform.parse("linux/amd64"))


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d"])
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidPlatform):
        Platform.parse(text)


def test_host_platform_here() -> None:
    host = Platform.host()
    assert host.os == "linux"
    assert str(host) in ("linux/amd64", "linux/arm64", "linux/arm/v7")
