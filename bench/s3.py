"""`python -m bench.s3`: Dockyard on S3 against boto3 on the same S3 server, in one run.

moto's standalone server runs as its own process on loopback; both contenders talk to it over
HTTP. Measured:
- push and pull of one blob (256 MiB by default) through `dockyard serve` (one streamed PATCH as
  Docker sends it; pull proxied and by 307 redirect) against `upload_fileobj`/`download_fileobj`
  of the same bytes with boto3's default transfer settings; the ratio is Dockyard's time over boto3's;
- the cost of re-hashing: an upload PATCHed to one replica and completed on another, which has no
  live hasher and reads the upload back, against completion on the replica that has it
  (on S3 and on a shared filesystem directory);
- peak RSS (VmHWM) of the server process while 1 GiB is pushed to S3.

The moto-specific settings here are for moto's sake only: its UploadPartCopy re-reads the whole
source object for every part, so the server copies with one CopyObject (threshold 5 GiB).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import yaml
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
BUCKET = "bench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench.s3: {what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench.s3: {what} did not start")


@contextmanager
def _process(cmd: list[str], url: str, what: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(url, process, what)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Moto:
    url: str

    def client(self) -> Any:
        config = BotoConfig(s3={"addressing_style": "path"}, request_checksum_calculation="when_required")
        return boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="bench",
            aws_secret_access_key="bench", config=config,
        )  # fmt: skip


def _dockyard(stack: ExitStack, workdir: Path, storage: dict[str, Any], name: str) -> tuple[str, int]:
    port = _free_port()
    config = workdir / f"{name}.yml"
    config.write_text(yaml.safe_dump({"version": "0.1", "log": {"level": "warn"}, "storage": storage}))
    cmd = [sys.executable, "-m", "dockyard", "serve", str(config), "--port", str(port), "--workers", "1"]
    url = f"http://127.0.0.1:{port}"
    process = stack.enter_context(_process(cmd, f"{url}/v2/", f"dockyard ({name})", workdir / f"{name}.log"))
    return url, process.pid


def _s3_storage(moto: Moto, root: str, redirect: bool) -> dict[str, Any]:
    return {
        "s3": {
            "bucket": BUCKET, "region": "us-east-1", "regionendpoint": moto.url, "forcepathstyle": True,
            "accesskey": "bench", "secretkey": "bench", "rootdirectory": root,
            "multipartcopythresholdsize": 5 * 1024 * MiB,
        },
        "redirect": {"disable": not redirect},
    }  # fmt: skip


def _chunks(size: int, seed: int) -> Iterator[bytes]:
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    for start in range(0, size, MiB):
        yield block[: min(MiB, size - start)] if start else bytes([seed & 0xFF]) + block[1 : min(MiB, size)]


def _digest(size: int, seed: int) -> str:
    hasher = hashlib.sha256()
    for chunk in _chunks(size, seed):
        hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


def _patch(client: httpx.Client, url: str, name: str, size: int, seed: int) -> str:
    """POST and one streamed PATCH (chunked, as Docker sends it); returns the upload's location."""
    start = client.post(f"{url}/v2/{name}/blobs/uploads/")
    start.raise_for_status()
    patched = client.patch(f"{url}{start.headers['location']}", content=_chunks(size, seed))
    patched.raise_for_status()
    return str(patched.headers["location"])


def _finish(client: httpx.Client, url: str, location: str, digest: str) -> float:
    began = time.perf_counter()
    done = client.put(f"{url}{location}", params={"digest": digest})
    done.raise_for_status()
    return time.perf_counter() - began


def _push(client: httpx.Client, url: str, name: str, size: int, seed: int) -> float:
    digest = _digest(size, seed)
    began = time.perf_counter()
    _finish(client, url, _patch(client, url, name, size, seed), digest)
    return time.perf_counter() - began


def _pull(client: httpx.Client, url: str, name: str, digest: str, size: int) -> float:
    began = time.perf_counter()
    received = 0
    with client.stream("GET", f"{url}/v2/{name}/blobs/{digest}", follow_redirects=True) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(MiB):
            received += len(chunk)
    assert received == size, (received, size)
    return time.perf_counter() - began


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.received = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.received += len(data)
        return len(data)


def _boto3(moto: Moto, size: int, seed: int) -> dict[str, float]:
    """Seconds for the same bytes with boto3 alone: one streamed request each way (like for like
    with a Docker push and pull), and the managed transfers (parallel parts and ranges)."""
    client = moto.client()
    data = b"".join(_chunks(size, seed))
    times: dict[str, float] = {}
    began = time.perf_counter()
    client.put_object(Bucket=BUCKET, Key="direct/blob", Body=data)
    times["put_object_s"] = time.perf_counter() - began
    began = time.perf_counter()
    body = client.get_object(Bucket=BUCKET, Key="direct/blob")["Body"]
    received = sum(len(chunk) for chunk in body.iter_chunks(MiB))
    times["get_object_s"] = time.perf_counter() - began
    assert received == size
    began = time.perf_counter()
    client.upload_fileobj(io.BytesIO(data), BUCKET, "direct/managed", Config=TransferConfig())
    times["upload_fileobj_s"] = time.perf_counter() - began
    # What Dockyard's writer does: a multipart upload of 10 MiB parts, one part at a time.
    serial = TransferConfig(multipart_chunksize=10 * MiB, max_concurrency=1, use_threads=False)
    began = time.perf_counter()
    client.upload_fileobj(io.BytesIO(data), BUCKET, "direct/serial", Config=serial)
    times["multipart_serial_s"] = time.perf_counter() - began
    del data
    sink = _Sink()
    began = time.perf_counter()
    client.download_fileobj(BUCKET, "direct/managed", sink, Config=TransferConfig())
    times["download_fileobj_s"] = time.perf_counter() - began
    assert sink.received == size
    client.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in ("direct/blob", "direct/managed", "direct/serial")]}
    )
    return times


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rehash(client: httpx.Client, replicas: tuple[str, str], size: int, seed: int) -> tuple[float, float]:
    """Seconds of the completing PUT on the replica with the live hasher, and on the other one
    (two different blobs of one size, so that neither completion finds its blob already stored)."""
    first, second = replicas
    live = _finish(client, first, _patch(client, first, "bench/rehash", size, seed), _digest(size, seed))
    other = seed + 1
    rehash = _finish(client, second, _patch(client, first, "bench/rehash", size, other), _digest(size, other))
    return live, rehash


def run(size: int, big: int, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"size_mib": size / MiB}
    mbps = size / MiB
    with ExitStack() as stack:
        port = _free_port()
        moto = Moto(f"http://127.0.0.1:{port}")
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        stack.enter_context(_process(cmd, f"{moto.url}/moto-api/", "moto", workdir / "moto.log"))
        moto.client().create_bucket(Bucket=BUCKET)
        proxied, _ = _dockyard(stack, workdir, _s3_storage(moto, "dockyard", redirect=False), "proxied")
        redirect, _ = _dockyard(stack, workdir, _s3_storage(moto, "dockyard", redirect=True), "redirect")
        client = stack.enter_context(httpx.Client(timeout=600))

        direct = _boto3(moto, size, 1)
        push = _push(client, proxied, "bench/s3", size, 1)
        digest = _digest(size, 1)
        pull = _pull(client, proxied, "bench/s3", digest, size)
        pull_redirect = _pull(client, redirect, "bench/s3", digest, size)
        results["boto3"] = {**direct, **{k.removesuffix("_s") + "_mib_s": mbps / v for k, v in direct.items()}}
        results["dockyard"] = {
            "push_s": push, "pull_proxied_s": pull, "pull_redirect_s": pull_redirect,
            "push_mib_s": mbps / push, "pull_proxied_mib_s": mbps / pull, "pull_redirect_mib_s": mbps / pull_redirect,
        }  # fmt: skip
        put, get = direct["put_object_s"], direct["get_object_s"]
        results["ratio"] = {"push": push / put, "pull_proxied": pull / get, "pull_redirect": pull_redirect / get}

        live, rehash = _rehash(client, (proxied, redirect), size, 2)
        results["rehash_s3"] = {"complete_live_s": live, "complete_other_replica_s": rehash}

        # A fresh server for the memory figure, so that nothing else has touched its heap.
        fresh, pid = _dockyard(stack, workdir, _s3_storage(moto, "dockyard", redirect=True), "memory")
        before = _peak_rss_mib(pid)
        _push(client, fresh, "bench/big", big, 3)
        results["peak_rss"] = {"push_mib": big / MiB, "before_mib": before, "peak_mib": _peak_rss_mib(pid)}

    with ExitStack() as stack:
        storage = {"filesystem": {"rootdirectory": str(workdir / "data")}}
        first, _ = _dockyard(stack, workdir, storage, "fs-a")
        second, _ = _dockyard(stack, workdir, storage, "fs-b")
        client = stack.enter_context(httpx.Client(timeout=600))
        live, rehash = _rehash(client, (first, second), size, 5)
        results["rehash_filesystem"] = {"complete_live_s": live, "complete_other_replica_s": rehash}
    return results


def report(results: dict[str, Any]) -> str:
    b, d, r = results["boto3"], results["dockyard"], results["ratio"]
    size = results["size_mib"]
    lines = [
        f"S3 (moto standalone server on loopback), one {size:.0f} MiB blob, one run",
        f"  push  dockyard (one streamed PATCH)  {d['push_s']:6.2f} s {d['push_mib_s']:6.1f} MiB/s",
        f"        boto3 put_object               {b['put_object_s']:6.2f} s {b['put_object_mib_s']:6.1f} MiB/s"
        f"   ratio {r['push']:.2f}",
        f"        boto3 upload_fileobj           {b['upload_fileobj_s']:6.2f} s {b['upload_fileobj_mib_s']:6.1f} MiB/s",
        f"        boto3 multipart, 10 MiB serial {b['multipart_serial_s']:6.2f} s "
        f"{b['multipart_serial_mib_s']:6.1f} MiB/s   ratio {d['push_s'] / b['multipart_serial_s']:.2f}"
        " (the requests Dockyard's writer makes)",
        f"  pull  dockyard proxied               {d['pull_proxied_s']:6.2f} s {d['pull_proxied_mib_s']:6.1f} MiB/s",
        f"        dockyard 307 to presigned URL  {d['pull_redirect_s']:6.2f} s {d['pull_redirect_mib_s']:6.1f} MiB/s"
        f"   ratio {r['pull_redirect']:.2f}",
        f"        boto3 get_object               {b['get_object_s']:6.2f} s {b['get_object_mib_s']:6.1f} MiB/s"
        f"   ratio {r['pull_proxied']:.2f} (proxied)",
        f"        boto3 download_fileobj         {b['download_fileobj_s']:6.2f} s "
        f"{b['download_fileobj_mib_s']:6.1f} MiB/s",
    ]
    for store in ("s3", "filesystem"):
        cost = results[f"rehash_{store}"]
        extra = cost["complete_other_replica_s"] - cost["complete_live_s"]
        lines.append(
            f"  re-hash on {store:10}: final PUT {cost['complete_live_s']:5.2f} s on the replica holding the hasher, "
            f"{cost['complete_other_replica_s']:5.2f} s on the other ({extra:+.2f} s, "
            f"{size / max(extra, 1e-9):.0f} MiB/s re-read and hashed)"
        )
    rss = results["peak_rss"]
    lines.append(
        f"  server peak RSS pushing {rss['push_mib']:.0f} MiB to S3: {rss['peak_mib']:.0f} MiB "
        f"(idle {rss['before_mib']:.0f} MiB)"
    )
    lines.append("  ratio = Dockyard's time / boto3's single-request time (1.00 = as fast as the SDK alone)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.s3", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="blob size for push/pull (default 256)")
    parser.add_argument("--big-mib", type=int, default=1024, help="blob size for the memory figure (default 1024)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where s3.json goes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        results = run(args.size_mib * MiB, args.big_mib * MiB, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "s3.json").write_text(json.dumps(results, indent=2))
    print(report(results))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
