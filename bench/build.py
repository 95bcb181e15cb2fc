"""`python -m bench.build`: `dockyard build` against `docker build` on one 5-instruction Dockerfile, cold
(--no-cache) and fully cached, and the push of each cold result to a Dockyard registry, in one run.

Docker's classic builder is measured, and BuildKit too when a docker CLI can drive it: the engine has
BuildKit built in, and Debian's docker.io CLI (20.10, /usr/bin/docker) speaks to it with DOCKER_BUILDKIT=1,
while newer CLIs need the buildx plugin; the CLI on the PATH and Debian's are tried, and a run without one
says why. All builders start from the same busybox base image, built by Docker FROM scratch, pushed to the
registry and pulled by Dockyard. Rounds alternate dockyard, docker, ...; each push goes to a new
repository, so the built layers are uploaded every time and the base layer is mounted. Needs root (RUN
steps are containers) and docker.io."""

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


DEBIAN_DOCKER = "/usr/bin/docker"  # docker.io's CLI: BuildKit built in, no buildx needed
# The bench's engine has no bridge (--bridge=none); BuildKit's RUN would look for one, so it shares the
# host's network, as dockyard build's RUN does by default.
BUILDKIT_FLAGS = ("--network", "host")


def buildkit_cli(env: dict[str, str], ctx: Path) -> tuple[str | None, str]:
    """A docker CLI that builds `ctx` with BuildKit, or None and why none does."""
    candidates = [c for c in dict.fromkeys([shutil.which("docker"), DEBIAN_DOCKER]) if c and os.path.isfile(c)]
    reasons = []
    for cli in candidates:
        probe = subprocess.run(
            [cli, "build", *BUILDKIT_FLAGS, "-q", str(ctx)],
            env={**env, "DOCKER_BUILDKIT": "1"},
            capture_output=True,
            timeout=300,
        )
        if probe.returncode == 0:
            return cli, ""
        lines = probe.stderr.decode(errors="replace").strip().splitlines()
        error = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "")
        reasons.append(f"{cli}: {error or f'exit {probe.returncode}'}")
    return None, "; ".join(reasons) or "no docker CLI"


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
            cli, why = buildkit_cli(denv, ctx)
            if cli is not None:
                builders["docker build (BuildKit)"] = (
                    [cli, "build", *BUILDKIT_FLAGS],
                    {**denv, "DOCKER_BUILDKIT": "1"},
                )
            else:
                print(f"BuildKit left out: no docker CLI here drives it ({why})", file=sys.stderr)
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
    print(f"{'measurement':<36} {'median':>9} {'min':>9} {'max':>9}  dockyard/classic  dockyard/BuildKit")
    for name, times in results.items():
        median = statistics.median(times)
        kind = name.rpartition(" ")[2]
        ratios = []
        for builder in ("classic", "BuildKit"):
            reference = results.get(f"docker build ({builder}): {kind}")
            if kind == "push" and builder == "classic":
                reference = results.get("docker push")
            ok = reference and name.startswith("dockyard")
            ratios.append(f"{median / statistics.median(reference):>6.2f}x" if ok and reference else "")
        print(
            f"{name:<36} {median * 1000:>7.0f}ms {min(times) * 1000:>7.0f}ms {max(times) * 1000:>7.0f}ms  "
            f"{ratios[0]:>16}  {ratios[1]:>17}"
        )


if __name__ == "__main__":
    sys.exit(main())
