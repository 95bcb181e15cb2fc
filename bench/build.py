"""`python -m bench.build`: `dockyard build` against `docker build` on one 5-instruction Dockerfile, cold
(--no-cache) and fully cached, and the push of each cold result to a Dockyard registry, in one run.

Docker's classic builder is measured, and BuildKit too when the docker CLI can use it (it needs the buildx
plugin; a CLI without it is reported and BuildKit left out). Both builders start from the same busybox
base image, built by Docker FROM scratch, pushed to the registry and pulled by Dockyard. Rounds alternate
dockyard, docker, ...; each push goes to a new repository, so the built layers are uploaded every time
and the base layer is mounted. Needs root (RUN steps are containers) and docker.io."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
DOCKERFILE = """FROM {base}
WORKDIR /app
COPY data/ ./data/
RUN cat data/* > /app/all && echo built > /app/marker
CMD ["cat", "/app/all"]
"""


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.decode()[-2000:]}")
    return elapsed


def _contexts(base: Path, registry: str) -> tuple[Path, Path, str]:
    root = base / "base-ctx" / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "tmp").mkdir()
    (base / "base-ctx" / "Dockerfile").write_text("FROM scratch\nCOPY rootfs/ /\n")
    image = f"{registry}/bench/base:1"
    ctx = base / "ctx"
    (ctx / "data").mkdir(parents=True)
    for i in range(20):
        (ctx / "data" / f"file{i:02d}.txt").write_text(f"line {i}\n" * 200)
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=image))
    return base / "base-ctx", ctx, image


def _buildkit_works(env: dict[str, str], ctx: Path) -> bool:
    probe = subprocess.run(
        ["docker", "build", "-q", str(ctx)], env={**env, "DOCKER_BUILDKIT": "1"}, capture_output=True, timeout=300
    )
    return probe.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.build", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per builder (default 5)")
    parser.add_argument("--quick", action="store_true", help="one round, to check the harness itself")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or sys.platform != "linux":
        print("bench.build: needs root on Linux", file=sys.stderr)
        return 1
    if not BUSYBOX.is_file():
        print(f"bench.build: {BUSYBOX} is missing (apt-get install busybox-static)", file=sys.stderr)
        return 1
    if not (shutil.which("dockerd") and shutil.which("docker")):
        print("bench.build: docker.io is not installed (apt-get install docker.io)", file=sys.stderr)
        return 1
    rounds = 1 if args.quick else args.rounds
    from bench import servers
    from bench.runtime import _start_dockerd, _stop_dockerd

    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        base = Path(tmp)
        server = servers.dockyard(base / "registry", workers=1)
        server.start()
        (base / "docker").mkdir()
        process, docker_env = _start_dockerd(base / "docker")
        address = f"{server.host}:{server.port}"
        try:
            base_ctx, ctx, image = _contexts(base, address)
            denv = {**docker_env, "DOCKER_BUILDKIT": "0"}
            env = {**os.environ, "DOCKYARD_RUNTIME_ROOT": str(base / "runtime")}
            dockyard = [sys.executable, "-m", "dockyard"]
            subprocess.run(
                ["docker", "build", "-q", "-t", image, str(base_ctx)], env=denv, check=True, capture_output=True
            )
            subprocess.run(["docker", "push", image], env=denv, check=True, capture_output=True)
            subprocess.run([*dockyard, "pull", "-q", image], env=env, check=True, capture_output=True)
            builders: dict[str, tuple[list[str], dict[str, str]]] = {
                "dockyard build": ([*dockyard, "build"], env),
                "docker build (classic)": (["docker", "build"], denv),
            }
            if _buildkit_works(denv, ctx):
                builders["docker build (BuildKit)"] = (["docker", "build"], {**denv, "DOCKER_BUILDKIT": "1"})
            else:
                print("BuildKit is not available to this docker CLI (no buildx plugin): left out", file=sys.stderr)
            pushers: dict[str, Callable[[str], float]] = {
                "dockyard build": lambda ref: _timed([*dockyard, "push", "-q", ref], env),
                "docker build (classic)": lambda ref: _timed(["docker", "push", "-q", ref], denv),
            }
            counter = iter(range(10**6))
            for _ in range(rounds):
                for name, (cmd, benv) in builders.items():
                    n = next(counter)
                    ref = f"{address}/bench/built-{n}:1"
                    results.setdefault(f"{name}: cold", []).append(
                        _timed([*cmd, "--no-cache", "-q", "-t", ref, str(ctx)], benv)
                    )
                    results.setdefault(f"{name}: cached", []).append(_timed([*cmd, "-q", "-t", ref, str(ctx)], benv))
                    if name in pushers:
                        results.setdefault(f"{name.split()[0]} push", []).append(pushers[name](ref))
        finally:
            _stop_dockerd(process, base / "docker")
            server.stop()
    _report(results)
    return 0


def _report(results: dict[str, list[float]]) -> None:
    print(f"{'measurement':<36} {'median':>9} {'min':>9} {'max':>9}  dockyard/docker(classic)")
    for name, times in results.items():
        median = statistics.median(times)
        kind = name.rpartition(" ")[2]
        reference = results.get(f"docker build (classic): {kind}") or results.get("docker push")
        ratio = f"{median / statistics.median(reference):>6.2f}x" if reference and name.startswith("dockyard") else ""
        print(f"{name:<36} {median * 1000:>7.0f}ms {min(times) * 1000:>7.0f}ms {max(times) * 1000:>7.0f}ms  {ratio}")


if __name__ == "__main__":
    sys.exit(main())
