from __future__ import annotations

import re
from pathlib import Path

import pytest

from oci.digest import InvalidDigest
from oci.manifests import ManifestError, Problem
from registry.errors import ErrorCode, RegistryError, protocol_error

SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "distribution-spec.md"

SPEC_CODES = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 404,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
}


def test_every_spec_code_is_in_the_table() -> None:
    for code, status in SPEC_CODES.items():
        member = ErrorCode[code]
        assert member.status == status, code
        assert member.message


def test_table_matches_the_spec_text() -> None:
    if not SPEC.exists():
        pytest.skip(f"the specs are not beside the checkout ({SPEC})")
    listed = set(re.findall(r"\| code-\d+ *\| `([A-Z_]+)`", SPEC.read_text()))
    assert listed <= set(SPEC_CODES)
    assert listed, "the spec's error table was not found"


def test_error_body_shape() -> None:
    body = RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": "sha256:x"}).body()
    assert body == {
        "errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": {"digest": "sha256:x"}}]
    }
    assert RegistryError(ErrorCode.MANIFEST_TOO_LARGE).body()["errors"][0]["code"] == "SIZE_INVALID"
    assert RegistryError(ErrorCode.MANIFEST_TOO_LARGE).status == 413


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
