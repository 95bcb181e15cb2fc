"""Parsing and validation of manifests: what they are and what they reference.

Nothing here answers HTTP: a manifest that breaks a rule raises `ManifestError`, and whoever parsed it
decides what that means (the registry maps it to an error code, in `registry/errors.py`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson

from oci import mediatypes as mt
from oci.descriptor import Descriptor
from oci.digest import Digest, InvalidDigest

MAX_MANIFEST_SIZE = 4 * 1024 * 1024


class Problem(enum.Enum):
    INVALID = "invalid"  # not a manifest the image spec allows
    DIGEST_INVALID = "digest-invalid"  # a descriptor's digest is malformed or of an unknown algorithm


class ManifestError(ValueError):
    def __init__(self, problem: Problem, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    blobs: tuple[Descriptor, ...]  # config and layers: must be linked in the repository
    children: tuple[Descriptor, ...]  # index entries: must be manifests in the repository
    subject: Digest | None
    artifact_type: str | None
    annotations: dict[str, str] | None


def _invalid(detail: str) -> ManifestError:
    return ManifestError(Problem.INVALID, detail)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where} is not a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}.mediaType missing")
    if not isinstance(digest, str):
        raise _invalid(f"{where}.digest missing")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}.size must be a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except InvalidDigest as exc:
        raise ManifestError(Problem.DIGEST_INVALID, f"{where}.digest: {exc}") from None
    urls = value.get("urls") or ()
    if not isinstance(urls, list | tuple):
        raise _invalid(f"{where}.urls must be a list")
    return Descriptor(media_type, parsed, size, tuple(str(u) for u in urls))


def detect_media_type(document: dict[str, Any]) -> str:
    """The type a manifest claims, or the one its shape implies when `mediaType` is absent."""
    media_type = document.get("mediaType")
    if isinstance(media_type, str) and media_type:
        return media_type
    if document.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1_SIGNED
    if "manifests" in document:
        return mt.OCI_INDEX
    return mt.OCI_MANIFEST


def media_type_of(body: bytes) -> str:
    """The media type to serve a stored manifest with."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return mt.OCI_MANIFEST
    return detect_media_type(document) if isinstance(document, dict) else mt.OCI_MANIFEST


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _invalid("a manifest is a JSON object")
    media_type = detect_media_type(document)
    declared = (content_type or "").split(";", 1)[0].strip()
    if media_type in mt.SCHEMA1 or declared in mt.SCHEMA1:
        raise _invalid("Docker image manifest schema 1 is not supported; push with a current client (schema 2 or OCI)")
    if document.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    body_type = document.get("mediaType")
    if declared and body_type and declared != body_type:
        raise _invalid(f"Content-Type {declared!r} does not match the manifest's mediaType {body_type!r}")
    if declared and not body_type:
        media_type = declared
    if media_type not in mt.MANIFESTS:
        raise _invalid(f"unsupported manifest media type {media_type!r}")

    blobs: list[Descriptor] = []
    children: list[Descriptor] = []
    if media_type in mt.IMAGE_MANIFESTS:
        blobs.append(_descriptor(document.get("config"), "config"))
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        blobs.extend(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers))
    else:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise _invalid("manifests must be a list")
        children.extend(_descriptor(entry, f"manifests[{i}]") for i, entry in enumerate(entries))

    subject = None
    if document.get("subject") is not None:
        subject = _descriptor(document["subject"], "subject").digest
    artifact_type = document.get("artifactType")
    if artifact_type is None and media_type in mt.IMAGE_MANIFESTS:
        artifact_type = (document.get("config") or {}).get("mediaType")
    annotations = document.get("annotations")
    return ParsedManifest(
        media_type=media_type,
        blobs=tuple(blobs),
        children=tuple(children),
        subject=subject,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        annotations=annotations if isinstance(annotations, dict) else None,
    )
