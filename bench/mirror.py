"""`python -m bench.mirror`: Dockyard's pull-through cache against distribution's (`proxy.remoteurl`)
on the same upstream, in one run.

The upstream is a Dockyard on loopback holding one image with a large random layer. Each round
starts each mirror fresh (empty storage) and measures: a miss (manifest by tag, then the layer,
every byte hashed), a hit (the layer again), and, on another fresh mirror, N concurrent misses of
the layer: the time until the last client has its last byte, and how many copies of the layer the
upstream sent (from the upstream's own `dockyard_http_sent_bytes` counter).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import servers
from bench.client import Client, Mismatch

_BLOB_ROUTE = "/v2/{name}/blobs/{digest}"
_REPO = "bench/mirror"
_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_MIRROR_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
proxy:
  remoteurl: {upstream}
"""


def _mirror(kind: str, workdir: Path, upstream: str, round_: int) -> servers.Server:
    port = servers.free_port()
    base = workdir / f"{kind}-{round_}-{port}"
    base.mkdir(parents=True)
    config = base / "config.yml"
    config.write_text(_MIRROR_CONFIG.format(root=base / "data", port=port, upstream=upstream))
    if kind == servers.DISTRIBUTION:
        binary = servers.distribution_binary()
        if binary is None:
            raise SystemExit("bench.mirror: docker-registry (CNCF distribution) is not installed")
        command = [binary, "serve", str(config)]
    else:
        command = [sys.executable, "-m", "dockyard", "serve", str(config), "--port", str(port)]
    return servers.Server(kind, "127.0.0.1", port, base / "data", command)


def _upstream_blob_bytes(upstream: servers.Server) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{upstream.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "dockyard_http_sent_bytes_total" and sample.labels.get("route") == _BLOB_ROUTE
    )


def _publish(upstream: servers.Server, size: int) -> tuple[str, int]:
    layer = os.urandom(size)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": _MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}],
        }
    ).encode()
    with Client(upstream.host, upstream.port) as client:
        client.push_monolithic(_REPO, layer, digest)
        client.push_monolithic(_REPO, config, config_digest)
        client.put_manifest(_REPO, "v1", manifest, _MANIFEST)
    return digest, size


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _miss_and_hit(mirror: servers.Server, digest: str, size: int) -> dict[str, float]:
    buffer = bytearray(1024 * 1024)
    with Client(mirror.host, mirror.port) as client:

        def miss() -> None:
            client.call("GET", f"/v2/{_REPO}/manifests/v1", Accept=_MANIFEST)
            client.pull(_REPO, digest, size, buffer)

        miss_seconds = _timed(miss)
        hit_seconds = _timed(lambda: client.pull(_REPO, digest, size, buffer))
    return {
        "miss_s": miss_seconds,
        "hit_s": hit_seconds,
        "miss_mbps": size / miss_seconds / 1e6,
        "hit_mbps": size / hit_seconds / 1e6,
    }


def _concurrent_misses(
    mirror: servers.Server, upstream: servers.Server, digest: str, size: int, clients: int
) -> dict[str, float]:
    before = _upstream_blob_bytes(upstream)
    errors: list[BaseException] = []
    start = threading.Barrier(clients)

    def one() -> None:
        try:
            with Client(mirror.host, mirror.port) as client:
                start.wait()
                client.pull(_REPO, digest, size, bytearray(1024 * 1024))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise Mismatch(f"{mirror.name}: {len(errors)} of {clients} concurrent pulls failed: {errors[0]}")
    return {"last_byte_s": seconds, "upstream_copies": (_upstream_blob_bytes(upstream) - before) / size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mirror", description=__doc__)
    parser.add_argument("--size", type=int, default=256, help="layer size in MiB (default 256)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent misses (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mirror (default 3)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where mirror.json goes")
    args = parser.parse_args(argv)
    kinds = [servers.DOCKYARD, servers.DISTRIBUTION]
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-mirror-") as tmp:
        workdir = Path(tmp)
        upstream = servers.dockyard(workdir, name="upstream")
        upstream.start()
        try:
            digest, size = _publish(upstream, args.size * 1024 * 1024)
            rounds: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
            for round_ in range(args.rounds):
                for kind in kinds:
                    sample: dict[str, float] = {}
                    for measure in ("single", "concurrent"):
                        mirror = _mirror(kind, workdir, upstream.url, round_ * 2 + (measure == "concurrent"))
                        mirror.start()
                        try:
                            if measure == "single":
                                sample |= _miss_and_hit(mirror, digest, size)
                            else:
                                sample |= _concurrent_misses(mirror, upstream, digest, size, args.clients)
                        finally:
                            mirror.stop()
                    rounds[kind].append(sample)
                    print(f"round {round_ + 1} {kind}: " + ", ".join(f"{k} {v:.2f}" for k, v in sample.items()))
        finally:
            upstream.stop()
    medians = {
        kind: {key: statistics.median(r[key] for r in rounds[kind]) for key in rounds[kind][0]} for kind in kinds
    }
    print(f"\nmirror, {args.size} MiB layer, {args.clients} concurrent misses, median of {args.rounds} rounds")
    print(f"{'metric':<18}" + "".join(f"{kind:>14}" for kind in kinds))
    for key in medians[kinds[0]]:
        print(f"{key:<18}" + "".join(f"{medians[kind][key]:>14.2f}" for kind in kinds))
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"size_mib": args.size, "clients": args.clients, "rounds": rounds, "medians": medians}
    (args.out / "mirror.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
