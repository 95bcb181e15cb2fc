"""What `dockyard run` loads: a container's start pays for the runtime only, never for the server
(Starlette, YAML, the auth stack), the registry client or an event loop when the image is local."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.runtime.conftest import IMAGE, Dockyard

NOT_ON_THE_CONTAINER_PATH = {"starlette", "uvicorn", "yaml", "registry", "auth", "asyncio", "httpx", "jinja2"}
# Loaded only by the commands that need them: the seccomp compiler (its output is cached), hashing
# (OpenSSL), temporary files and calendars (bench/README.md has what each costs).
SPARED_ON_A_WARM_START = {
    "runtime.seccomp.bpf",
    "runtime.seccomp.profile",
    "runtime.networks",
    "subprocess",
    "hashlib",
    "tempfile",
    "random",
    "calendar",
}


def _run_modules(dy: Dockyard) -> list[str]:
    script = (
        "import json, sys\n"
        "from dockyard.__main__ import main\n"
        f"code = main(['run', '--rm', {IMAGE!r}, 'sh', '-c', 'echo ran'])\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps([code, sorted(sys.modules)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=dy.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    code, modules = json.loads(result.stderr.rsplit("MODULES ", 1)[1])
    assert (code, result.stdout) == (0, "ran\n"), result.stderr
    assert "runtime.commands.run" in modules
    return list(modules)


def test_run_of_a_local_image_imports_no_server_client_or_event_loop(dy: Dockyard) -> None:
    modules = _run_modules(dy)
    assert not {name for name in modules if name.split(".")[0] in NOT_ON_THE_CONTAINER_PATH}


def test_a_second_run_spares_the_seccomp_compiler_hashing_and_tempfiles(dy: Dockyard) -> None:
    _run_modules(dy)  # the first run may compile and cache the seccomp filter
    assert SPARED_ON_A_WARM_START & set(_run_modules(dy)) == set()


def test_the_supervisor_of_a_container_on_no_network_loads_no_network_code(dy: Dockyard) -> None:
    # The supervisor is a fork of the CLI: under -X importtime, what it imports after the fork is
    # written to its stderr, the container's supervisor.log.
    for name in ("first", "second"):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "dockyard", "run", "--name", name, IMAGE, "true"],
            env=dy.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, result.stderr
    logs = sorted((dy.root / "containers").glob("*/supervisor.log"))
    assert len(logs) == 2
    for log in logs:
        loaded = [line for line in log.read_text().splitlines() if line.startswith("import time:")]
        assert [line for line in loaded if "runtime.networks" in line or line.endswith(" subprocess")] == []
