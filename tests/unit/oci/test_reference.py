"""Image references normalise with Docker's defaults (distribution's reference/normalize.go)."""

from __future__ import annotations

import pytest

from oci.reference import InvalidReference, Reference, is_loopback, normalize

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("user/app", "docker.io/user/app:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/demo/web", "localhost:5000/demo/web:latest"),
        ("127.0.0.1:5000/demo/web:v2", "127.0.0.1:5000/demo/web:v2"),
        ("registry.example.com/a/b/c:t", "registry.example.com/a/b/c:t"),
        ("[::1]:5000/demo", "[::1]:5000/demo:latest"),
        (f"127.0.0.1:5000/demo@{DIGEST}", f"127.0.0.1:5000/demo@{DIGEST}"),
        (f"127.0.0.1:5000/demo:v1@{DIGEST}", f"127.0.0.1:5000/demo:v1@{DIGEST}"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_uppercase_first_component_is_a_host() -> None:
    # Docker reads a first component with capitals as a host name, not as a Docker Hub namespace.
    assert Reference.parse("UPPER/case").registry == "UPPER"


def test_parts() -> None:
    ref = Reference.parse(f"localhost:5000/demo/web:v1@{DIGEST}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("localhost:5000", "demo/web", "v1", DIGEST)
    assert ref.reference == DIGEST  # the digest wins when pulling
    assert ref.name == "localhost:5000/demo/web"
    assert Reference.parse("busybox").endpoint == "registry-1.docker.io"
    assert Reference.parse("127.0.0.1:5000/x").endpoint == "127.0.0.1:5000"


@pytest.mark.parametrize(
    ("text", "familiar"),
    [("busybox", "busybox:latest"), ("user/app:v1", "user/app:v1"), ("localhost:5000/a", "localhost:5000/a:latest")],
)
def test_familiar(text: str, familiar: str) -> None:
    assert Reference.parse(text).familiar() == familiar


@pytest.mark.parametrize(
    "text",
    [
        "",
        "docker.io/Upper",
        "localhost:5000/Upper",
        "busybox:",
        "busybox:-bad",
        "busybox@sha256:short",
        "busybox@md5:" + "a" * 32,
        "a//b",
        "-leading",
        " busybox",
        "host:5000/name:" + "t" * 129,
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidReference):
        Reference.parse(text)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1", True),
        ("127.1.2.3:443", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("10.0.0.1:5000", False),
        ("registry.example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
