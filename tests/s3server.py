"""An S3 endpoint for tests: moto's standalone server on a free loopback port (real HTTP, boto3
talks to it over the wire), or a real endpoint named by DOCKYARD_TEST_S3_URL, written as
`http://ACCESS:SECRET@HOST:PORT/BUCKET?region=REGION` (MinIO, Ceph RGW, Garage, AWS)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config as BotoConfig


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    bucket: str
    region: str
    accesskey: str
    secretkey: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.accesskey,
            aws_secret_access_key=self.secretkey,
            config=BotoConfig(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
        )

    def options(self, **overrides: Any) -> dict[str, Any]:
        """The `storage.s3` config section that points at this endpoint."""
        section: dict[str, Any] = {
            "bucket": self.bucket,
            "region": self.region,
            "regionendpoint": self.url,
            "forcepathstyle": True,
            "accesskey": self.accesskey,
            "secretkey": self.secretkey,
            "rootdirectory": f"t-{uuid.uuid4().hex[:12]}",
        }
        section.update(overrides)
        return section

    def keys(self, prefix: str) -> list[str]:
        """Every raw object key below `prefix`, and every multipart upload still open there."""
        client = self.client()
        found: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        uploads = client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        found += [f"multipart upload: {item['Key']}" for item in uploads.get("Uploads", [])]
        return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def s3_endpoint() -> Iterator[S3Endpoint]:
    url = os.environ.get("DOCKYARD_TEST_S3_URL")
    if url:
        yield _parse(url)
        return
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = S3Endpoint(f"http://127.0.0.1:{port}", "dockyard-test", "us-east-1", "testing", "testing")
        endpoint.client().create_bucket(Bucket=endpoint.bucket)
        yield endpoint
    finally:
        server.stop()


def _parse(url: str) -> S3Endpoint:
    parts = urlsplit(url)
    region = parse_qs(parts.query).get("region", ["us-east-1"])[0]
    host = parts.hostname or "127.0.0.1"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return S3Endpoint(
        url=f"{parts.scheme}://{netloc}",
        bucket=parts.path.strip("/"),
        region=region,
        accesskey=unquote(parts.username or ""),
        secretkey=unquote(parts.password or ""),
    )
