"""Manifest parsing knows no server: it raises its own `ManifestError` (tests/unit/test_errors.py checks
the code the registry answers it with)."""

from __future__ import annotations

import json

import pytest

from oci import mediatypes as mt
from oci.digest import Digest
from oci.manifests import ManifestError, Problem, parse_manifest
from registry.errors import RegistryError

CONFIG = {"mediaType": mt.OCI_CONFIG, "digest": str(Digest.of(b"{}")), "size": 2}


def manifest(**changes: object) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": CONFIG, "layers": [], **changes}
    ).encode()


def test_a_valid_manifest_parses() -> None:
    parsed = parse_manifest(manifest(), mt.OCI_MANIFEST)
    assert parsed.media_type == mt.OCI_MANIFEST
    assert [str(d.digest) for d in parsed.blobs] == [CONFIG["digest"]]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", Problem.INVALID),
        (manifest(schemaVersion=1), Problem.INVALID),
        (manifest(layers="nope"), Problem.INVALID),
        (manifest(config={**CONFIG, "digest": "sha256:short"}), Problem.DIGEST_INVALID),
    ],
)
def test_broken_manifests_raise_manifest_error_not_a_registry_error(body: bytes, problem: Problem) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(body, None)
    assert not isinstance(caught.value, RegistryError)
    assert caught.value.problem is problem
