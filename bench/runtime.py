"""`python -m bench.runtime`: start-to-exit time of `IMAGE true` under `dockyard run --rm`, `runc run`
on a bundle holding the same unpacked layers, and `docker run --rm`, in one run, as ratios.

Needs root. runc and Docker are optional: a missing one is reported and left out. The busybox image
is built from Debian's busybox-static without the internet, stored as a pull would store it, and
given to Docker through `docker load`."""

from __future__ import annotations

import argparse
import compileall
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REF = "bench/busybox:latest"
PROJECT = Path(__file__).resolve().parent.parent
# What `dockyard run` imports: compiled as `pip install` compiles an installed package.
RUN_PATH_PACKAGES = ("dockyard", "runtime", "oci")


def _compile_project() -> list[Path]:
    """Compile the run path's modules into their __pycache__ directories; returns the directories
    this made, for removal afterwards."""
    before = set(PROJECT.rglob("__pycache__"))
    for package in RUN_PATH_PACKAGES:
        compileall.compile_dir(PROJECT / package, quiet=1)
    return sorted(set(PROJECT.rglob("__pycache__")) - before)


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.decode()[-2000:]}")
    return elapsed


def _measure(run: Callable[[], float], rounds: int) -> list[float]:
    run()  # warm caches: page cache, Python bytecode, dockerd's image metadata
    return [run() for _ in range(rounds)]


def _seed(root: Path) -> list[Path]:
    """The busybox image in a runtime root, as `dockyard pull` leaves it; returns its layer dirs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.runtime.images import busybox_layer, seed

    image = seed(root, REF, [busybox_layer()])
    return image.layer_dirs


def _runc_bundle(base: Path, layers: list[Path]) -> Path:
    from runtime.layers import flatten

    bundle = base / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    flatten(layers, bundle / "rootfs")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["true"]
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def _docker_tar(layers: list[Path]) -> bytes:
    """A `docker save` archive of the same root filesystem, for `docker load`."""
    from runtime.layers import flatten

    with tempfile.TemporaryDirectory() as tmp:
        flat = Path(tmp) / "root"
        flat.mkdir()
        flatten(layers, flat)
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w") as tar:
            for entry in sorted(flat.iterdir()):
                tar.add(entry, arcname=entry.name)
        layer_bytes = layer.getvalue()
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [REF], "Layers": ["layer/layer.tar"]}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in ((config_name, config), ("layer/layer.tar", layer_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _start_dockerd(base: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    sock = base / "docker.sock"
    cmd = [
        "dockerd",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--data-root",
        str(base / "data"),
        "--exec-root",
        str(base / "exec"),
        "--pidfile",
        str(base / "dockerd.pid"),
        "-H",
        f"unix://{sock}",
    ]
    with open(base / "dockerd.log", "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(base / "client")}
    deadline = time.monotonic() + 60
    while subprocess.run(["docker", "info"], env=env, capture_output=True).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("dockerd did not start: " + (base / "dockerd.log").read_text()[-2000:])
        time.sleep(0.2)
    return process, env


def _stop_dockerd(process: subprocess.Popen[bytes], base: Path) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with open("/proc/self/mounts") as mounts:
        ours = [line.split()[1] for line in mounts if str(base) in line.split()[1]]
    for mountpoint in sorted(ours, key=len, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per runtime after one warm-up (default 5)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or sys.platform != "linux":
        print("bench.runtime: needs root on Linux", file=sys.stderr)
        return 1
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        base = Path(tmp)
        root = base / "runtime"
        layers = _seed(root)
        env = {**os.environ, "DOCKYARD_RUNTIME_ROOT": str(root)}
        dockyard = [sys.executable, "-m", "dockyard"]
        results["python -m dockyard --help (CLI start-up alone)"] = _measure(
            lambda: _timed([*dockyard, "--help"], env), args.rounds
        )
        results["dockyard run --rm"] = _measure(
            lambda: _timed([*dockyard, "run", "--rm", REF, "true"], env), args.rounds
        )
        made = _compile_project() if os.environ.get("PYTHONDONTWRITEBYTECODE") else []
        try:
            results["dockyard run --rm, bytecode compiled"] = _measure(
                lambda: _timed([*dockyard, "run", "--rm", REF, "true"], env), args.rounds
            )
        finally:
            for directory in made:
                shutil.rmtree(directory, ignore_errors=True)
        if shutil.which("runc"):
            bundle = _runc_bundle(base, layers)
            counter = iter(range(10**6))
            results["runc run"] = _measure(
                lambda: _timed(
                    ["runc", "--root", str(base / "runc"), "run", "--bundle", str(bundle), f"bench-{next(counter)}"]
                ),
                args.rounds,
            )
        else:
            print("runc is not installed: left out", file=sys.stderr)
        if shutil.which("dockerd") and shutil.which("docker"):
            (base / "docker").mkdir()
            process, denv = _start_dockerd(base / "docker")
            try:
                subprocess.run(["docker", "load"], input=_docker_tar(layers), env=denv, check=True, capture_output=True)
                results["docker run --rm"] = _measure(
                    lambda: _timed(["docker", "run", "--rm", "--network", "none", REF, "true"], denv), args.rounds
                )
            finally:
                _stop_dockerd(process, base / "docker")
        else:
            print("docker is not installed: left out", file=sys.stderr)
    _report(results)
    return 0


def _report(results: dict[str, list[float]]) -> None:
    unset = "not set: every row runs compiled bytecode"
    compiled = "set: the first dockyard row runs uncompiled, the second compiled as an install would be"
    print(f"PYTHONDONTWRITEBYTECODE {compiled if os.environ.get('PYTHONDONTWRITEBYTECODE') else unset}")
    ours = statistics.median(results["dockyard run --rm"])
    print(f"{'runtime':<50} {'median':>9} {'min':>9} {'max':>9}  dockyard/this")
    for name, times in results.items():
        median = statistics.median(times)
        print(
            f"{name:<50} {median * 1000:>7.0f}ms {min(times) * 1000:>7.0f}ms {max(times) * 1000:>7.0f}ms"
            f"  {ours / median:>6.2f}x"
        )
    docker = results.get("docker run --rm")
    if docker:
        best = statistics.median(results.get("dockyard run --rm, bytecode compiled") or results["dockyard run --rm"])
        ratio = best / statistics.median(docker)
        mark = "✓" if ratio <= 0.5 else "✗"
        print(f"{mark} dockyard run --rm (compiled) / docker run --rm --network none: {ratio:.2f} (target <= 0.50)")
    startup = statistics.median(results["python -m dockyard --help (CLI start-up alone)"])
    print(f"dockyard run --rm without the CLI's start-up: ~{max(0.0, ours - startup) * 1000:.0f}ms")


if __name__ == "__main__":
    sys.exit(main())
