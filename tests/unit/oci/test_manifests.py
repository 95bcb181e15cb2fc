"""Manifest parsing knows no server: it raises its own `ManifestError`, which the registry maps to a code."""

from __future__ import annotations

import json

import pytest

from oci import mediatypes as mt
from oci.digest import Digest, InvalidDigest
from oci.manifests import ManifestError, Problem, parse_manifest
from registry.errors import ErrorCode, RegistryError, protocol_error

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


def test_the_registry_maps_protocol_errors_to_codes() -> None:
    invalid = protocol_error(ManifestError(Problem.INVALID, "layers must be a list"))
    assert invalid.code is ErrorCode.MANIFEST_INVALID
    assert invalid.body()["errors"][0] == {
        "code": "MANIFEST_INVALID",
        "message": "manifest invalid: layers must be a list",
        "detail": "layers must be a list",
    }
    assert protocol_error(ManifestError(Problem.DIGEST_INVALID, "config.digest: x")).code is ErrorCode.DIGEST_INVALID
    assert protocol_error(InvalidDigest("invalid digest 'x'")).code is ErrorCode.DIGEST_INVALID


@pytest.mark.parametrize("problem", list(Problem))
def test_every_problem_has_a_code(problem: Problem) -> None:
    assert protocol_error(ManifestError(problem, "detail")).status == 400
