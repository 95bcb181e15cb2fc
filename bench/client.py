"""The benchmark's registry client: `http.client` on one keep-alive connection, 1 MiB buffers.

Every call checks what the server answered (status, digest headers, the bytes themselves) and raises
`Mismatch` when it is wrong, so a figure is never reported for a wrong answer.
"""

from __future__ import annotations

import hashlib
from http.client import HTTPConnection, HTTPResponse
from urllib.parse import urlsplit

BUFFER = 1024 * 1024
OCTETS = "application/octet-stream"


class Mismatch(Exception):
    """The server answered wrongly: the measurement is void."""


def sha256_digest(data: bytes | bytearray | memoryview) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _relative(location: str) -> str:
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _with_query(location: str, key: str, value: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}{key}={value}"


class Client:
    def __init__(self, host: str, port: int, timeout: float = 300.0) -> None:
        self.conn = HTTPConnection(host, port, timeout=timeout, blocksize=BUFFER)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, method: str, path: str, body: bytes | memoryview | None = None, **headers: str) -> HTTPResponse:
        self.conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        return self.conn.getresponse()

    def call(
        self, method: str, path: str, body: bytes | memoryview | None = None, expect: int = 200, **headers: str
    ) -> tuple[HTTPResponse, bytes]:
        response = self.open(method, path, body, **headers)
        data = response.read()
        if response.status != expect:
            raise Mismatch(f"{method} {path}: {response.status} (expected {expect}): {data[:300]!r}")
        return response, data

    # -- pushes ----------------------------------------------------------------------------

    def start_upload(self, repo: str) -> str:
        response, _ = self.call("POST", f"/v2/{repo}/blobs/uploads/", b"", expect=202, Content_Length="0")
        return _relative(self._header(response, "Location"))

    def finish_upload(self, location: str, digest: str, body: bytes | memoryview = b"") -> None:
        response, _ = self.call("PUT", _with_query(location, "digest", digest), body, expect=201, Content_Type=OCTETS)
        if self._header(response, "Docker-Content-Digest") != digest:
            raise Mismatch(f"PUT {location}: Docker-Content-Digest {response.getheader('Docker-Content-Digest')}")

    def push_monolithic(self, repo: str, data: bytes | memoryview, digest: str) -> None:
        """POST, then PUT ?digest= with the whole blob (the spec's two-step monolithic upload)."""
        self.finish_upload(self.start_upload(repo), digest, data)

    def push_chunked(self, repo: str, data: bytes | memoryview, digest: str, chunk: int) -> None:
        """POST, one PATCH per chunk with Content-Range, then an empty PUT ?digest=."""
        location = self.start_upload(repo)
        view = memoryview(data)
        for start in range(0, len(view), chunk):
            part = view[start : start + chunk]
            end = start + len(part) - 1
            response, _ = self.call(
                "PATCH", location, part, expect=202, Content_Type=OCTETS, Content_Range=f"{start}-{end}"
            )
            if self._header(response, "Range") != f"0-{end}":
                raise Mismatch(f"PATCH {start}-{end}: Range {response.getheader('Range')}")
            location = _relative(self._header(response, "Location"))
        self.finish_upload(location, digest)

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        response, _ = self.call("PUT", f"/v2/{repo}/manifests/{reference}", body, expect=201, Content_Type=media_type)
        return self._header(response, "Docker-Content-Digest")

    # -- pulls -----------------------------------------------------------------------------

    def pull(self, repo: str, digest: str, size: int, buffer: bytearray, verify: bool = True) -> int:
        """GET a blob, reading it into `buffer` block by block; checks length and (if `verify`) sha256."""
        response = self.open("GET", f"/v2/{repo}/blobs/{digest}")
        if response.status != 200:
            raise Mismatch(f"GET blob {digest}: {response.status} {response.read()[:300]!r}")
        hasher = hashlib.sha256() if verify else None
        view = memoryview(buffer)
        received = 0
        while True:
            count = response.readinto(view)
            if not count:
                break
            received += count
            if hasher is not None:
                hasher.update(view[:count])
        if received != size:
            raise Mismatch(f"GET blob {digest}: {received} bytes, expected {size}")
        if hasher is not None and f"sha256:{hasher.hexdigest()}" != digest:
            raise Mismatch(f"GET blob {digest}: body digest sha256:{hasher.hexdigest()}")
        return received

    def pull_range(self, repo: str, digest: str, start: int, end: int, expected: bytes | memoryview) -> int:
        response, body = self.call("GET", f"/v2/{repo}/blobs/{digest}", expect=206, Range=f"bytes={start}-{end}")
        content_range = response.getheader("Content-Range", "")
        if not content_range.startswith(f"bytes {start}-{end}/"):
            raise Mismatch(f"ranged GET {start}-{end}: Content-Range {content_range!r}")
        if body != expected:
            raise Mismatch(f"ranged GET {start}-{end}: wrong bytes")
        return len(body)

    @staticmethod
    def _header(response: HTTPResponse, name: str) -> str:
        value = response.getheader(name)
        if value is None:
            raise Mismatch(f"response without {name}")
        return value
