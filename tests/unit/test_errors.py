from __future__ import annotations

import re
from pathlib import Path

import pytest

from oci.digest import InvalidDigest
from oci.manifests import ManifestError, Problem
from registry.errors import ErrorCode, RegistryError, registry_error

SPEC = Path(__file__).with_name("specs") / "distribution-spec-error-codes.md"

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
    listed = set(re.findall(r"\| code-\d+ *\| `([A-Z_]+)`", SPEC.read_text()))
    assert listed <= set(SPEC_CODES)
    assert listed, "the spec's error table was not found"


def test_error_body_shape() -> None:
    body = RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": "sha256:x"}).body()
    assert body == {
        "errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": {"digest": "sha256:x"}}]
    }


def test_member_names_are_the_wire_codes() -> None:
    for member in ErrorCode:
        assert RegistryError(member).body()["errors"][0]["code"] == member.name
    # A status other than the code's usual one is the answer's, not a second name for the code.
    too_large = RegistryError(ErrorCode.SIZE_INVALID, status=413)
    assert too_large.status == 413 and too_large.body()["errors"][0]["code"] == "SIZE_INVALID"
    assert {m.name for m in ErrorCode} >= set(SPEC_CODES)
    assert not {"RANGE_INVALID", "MANIFEST_TOO_LARGE", "NOT_FOUND"} & {m.name for m in ErrorCode}


def test_the_registry_maps_protocol_errors_to_codes() -> None:
    invalid = registry_error(ManifestError(Problem.INVALID, "layers must be a list"))
    assert invalid.code is ErrorCode.MANIFEST_INVALID
    assert invalid.body()["errors"][0] == {
        "code": "MANIFEST_INVALID",
        "message": "manifest invalid: layers must be a list",
        "detail": "layers must be a list",
    }
    assert registry_error(ManifestError(Problem.DIGEST_INVALID, "config.digest: x")).code is ErrorCode.DIGEST_INVALID
    assert registry_error(InvalidDigest("invalid digest 'x'")).code is ErrorCode.DIGEST_INVALID


@pytest.mark.parametrize("problem", list(Problem))
def test_every_problem_has_a_code(problem: Problem) -> None:
    assert registry_error(ManifestError(problem, "detail")).status == 400
