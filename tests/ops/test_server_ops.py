"""Operations against a real `dockyard serve` (uvicorn on a loopback port): metrics summed over
several worker processes, JSON log lines, graceful shutdown with an upload in flight, and GC
scheduled inside the server."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import start_registry, wait_for

pytestmark = pytest.mark.e2e


def _sum_samples(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def _push_blob(url: str, name: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=url) as c:
        r = c.post(f"/v2/{name}/blobs/uploads/")
        assert r.status_code == 202, r.text
        r = c.put(r.headers["location"], params={"digest": digest}, content=data)
        assert r.status_code == 201, r.text
    return digest


def test_metrics_add_up_over_worker_processes(tmp_path: Path) -> None:
    server = start_registry(tmp_path / "data", workers=2)
    ping = 'dockyard_http_requests_total{method="GET",route="/v2/",status="200"}'
    try:
        before = _sum_samples(httpx.get(f"{server.url}/metrics").text, ping)  # start_registry's probes
        for _ in range(30):
            # a new connection each time, so both workers serve some
            assert httpx.get(f"{server.url}/v2/", headers={"Connection": "close"}).status_code == 200
        _push_blob(server.url, "metrics/test", b"x" * 4096)
        for _ in range(4):  # whichever worker answers the scrape reports everyone's samples
            text = httpx.get(f"{server.url}/metrics", headers={"Connection": "close"}).text
            assert _sum_samples(text, ping) == before + 30
            received = _sum_samples(text, "dockyard_http_received_bytes_total{")
            assert received >= 4096
    finally:
        server.stop()


def test_json_access_log_lines_from_workers(tmp_path: Path) -> None:
    server = start_registry(tmp_path / "data", workers=2, env={"DOCKYARD_LOG_FORMATTER": "json"})
    try:
        r = httpx.get(f"{server.url}/v2/nothing/here/manifests/latest")
        request_id = r.headers["x-request-id"]

        def logged() -> bool:
            return request_id in server.logs()

        wait_for(logged, 10, "the access log line")
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    (entry,) = [line for line in lines if line.get("request_id") == request_id]
    assert entry["status"] == 404 and entry["repository"] == "nothing/here" and entry["action"] == "pull"
    assert entry["route"] == "/v2/{name}/manifests/{reference}" and entry["logger"] == "dockyard.access"
    # uvicorn's own lines come out as JSON too
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)


class SlowBody:
    """A request body sent in pieces with pauses: an upload still running when SIGTERM arrives."""

    def __init__(self, pieces: int, size: int, pause: float) -> None:
        self.pieces, self.size, self.pause = pieces, size, pause
        self.started = threading.Event()
        self.data = b"".join(bytes([i % 251]) * size for i in range(pieces))

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.pieces):
            yield bytes([i % 251]) * self.size
            self.started.set()
            time.sleep(self.pause)


def _patch_in_thread(url: str, body: SlowBody) -> tuple[threading.Thread, dict[str, object]]:
    result: dict[str, object] = {}

    def run() -> None:
        try:
            r = httpx.patch(url, content=iter(body), timeout=60)
            result["status"] = r.status_code
        except httpx.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _stops_answering(url: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
        except httpx.TransportError:  # refused, reset, closed or unanswered: not served
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_a_running_upload_finish(tmp_path: Path, workers: int) -> None:
    root = tmp_path / "data"
    env = {"DOCKYARD_HTTP_DRAINTIMEOUT": "20s"}
    server = start_registry(root, env=env, workers=workers)
    location = httpx.post(f"{server.url}/v2/drain/test/blobs/uploads/").headers["location"]
    body = SlowBody(pieces=12, size=256 * 1024, pause=0.25)
    thread, result = _patch_in_thread(f"{server.url}{location}", body)
    # SIGTERM only once a worker is storing the upload: a connection still waiting in the listen
    # queue when draining begins is not served, rightly.
    data = root / "docker/registry/v2/repositories/drain/test/_uploads" / location.rsplit("/", 1)[1] / "data"
    wait_for(lambda: data.is_file() and data.stat().st_size > 0, 10, "the upload's first bytes stored")
    server.process.send_signal(signal.SIGTERM)
    # No new request is served once draining (one worker closes its socket: refused; with several,
    # uvicorn's supervisor holds the shared socket until the end: the kernel queues, nobody answers).
    # The upload in flight goes on. A loaded machine may take a moment to pass the signal on to
    # every worker, so new requests must stop being answered within a few seconds, not at once.
    assert _stops_answering(f"{server.url}/v2/", within=10), "new requests were still served while draining"
    thread.join(30)
    assert result.get("status") == 202, result
    # uvicorn re-raises the signal once drained: "terminated by SIGTERM", a clean stop to systemd.
    assert server.process.wait(30) in (0, -signal.SIGTERM)
    assert "Traceback" not in server.logs()

    # Another process (a restarted or second replica) completes the upload: every byte is there.
    again = start_registry(root, env=env)
    try:
        digest = "sha256:" + hashlib.sha256(body.data).hexdigest()
        r = httpx.put(f"{again.url}{location}", params={"digest": digest})
        assert r.status_code == 201, r.text
        assert httpx.get(f"{again.url}/v2/drain/test/blobs/{digest}").content == body.data
    finally:
        again.stop()


def test_an_upload_cut_by_the_drain_timeout_leaves_nothing_half_written(tmp_path: Path) -> None:
    root = tmp_path / "data"
    server = start_registry(root, env={"DOCKYARD_HTTP_DRAINTIMEOUT": "2s"})
    location = httpx.post(f"{server.url}/v2/drain/cut/blobs/uploads/").headers["location"]
    first = b"committed chunk"
    r = httpx.patch(f"{server.url}{location}", content=first)
    assert r.status_code == 202
    body = SlowBody(pieces=40, size=64 * 1024, pause=0.25)  # ten seconds: longer than the drain
    thread, result = _patch_in_thread(f"{server.url}{location}", body)
    assert body.started.wait(10)
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    thread.join(30)
    assert "status" not in result or result["status"] != 202

    again = start_registry(root)
    try:
        r = httpx.get(f"{again.url}{location}")
        assert r.status_code == 204
        assert r.headers["range"] == f"0-{len(first) - 1}"  # the cut chunk left no bytes behind
        digest = "sha256:" + hashlib.sha256(first).hexdigest()
        assert httpx.head(f"{again.url}/v2/drain/cut/blobs/{digest}").status_code == 404
        assert httpx.put(f"{again.url}{location}", params={"digest": digest}).status_code == 201
    finally:
        again.stop()


def test_gc_scheduled_in_the_server(tmp_path: Path) -> None:
    env = {"DOCKYARD_GC_INTERVAL": "1s", "DOCKYARD_GC_GRACEPERIOD": "0s"}
    server = start_registry(tmp_path / "data", env=env)
    try:
        digest = _push_blob(server.url, "gc/scheduled", b"nobody references me")

        def collected() -> bool:
            return httpx.head(f"{server.url}/v2/gc/scheduled/blobs/{digest}").status_code == 404

        wait_for(collected, 20, "the scheduled collection")

        # The blob is gone while its run is still going; the run's counters are added when it ends.
        def counted() -> bool:
            text = httpx.get(f"{server.url}/metrics").text
            return _sum_samples(text, "dockyard_gc_freed_bytes_total") >= len(b"nobody references me")

        wait_for(counted, 20, "the collection's metrics")
        text = httpx.get(f"{server.url}/metrics").text
        assert _sum_samples(text, 'dockyard_gc_runs_total{result="success"}') >= 1
    finally:
        server.stop()
