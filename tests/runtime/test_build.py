"""`dockyard build` on its own (issue 15): the cache (CACHED, one changed file rebuilds from its step,
the same image id when nothing changed, pruned by `image prune` and `builder prune`), reproducible
layers under SOURCE_DATE_EPOCH, the errors (failing RUN, syntax, missing COPY source, remote ADD),
.dockerignore, --target, --build-arg, a Dockerfile on stdin, RUN --network none, and build, push,
remove, pull and run through a real registry without Docker."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_busybox
from tests.runtime.conftest import IMAGE, Dockyard
from tests.servers import RegistryProcess, free_port, start_registry

pytestmark = [pytest.mark.privileged]

APP = f"""FROM {IMAGE}
WORKDIR /app
COPY deps.txt .
RUN cp deps.txt installed.txt
COPY src/ ./src/
RUN cat src/* > combined.txt
CMD ["cat", "/app/combined.txt"]
"""


def _context(tmp: Path, dockerfile: str = APP) -> Path:
    ctx = tmp / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "deps.txt").write_text("dep\n")
    (ctx / "src/a.txt").write_text("a\n")
    (ctx / "src/b.txt").write_text("b\n")
    return ctx


def _steps(output: str) -> dict[int, str]:
    """Step number -> CACHED or DONE, from the build's progress lines."""
    return {int(n): what for n, what in re.findall(r"^#(\d+) (CACHED|DONE)", output, re.M)}


def _image_id(dy: Dockyard, ref: str) -> str:
    doc: str = json.loads(dy("image", "inspect", ref, check=True).stdout)[0]["Id"]
    return doc


def test_rebuild_is_cached_and_gives_the_same_image(dy: Dockyard, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    first = dy("build", "-t", "app:1", str(ctx), check=True)
    assert "CACHED" not in first.stdout
    image = _image_id(dy, "app:1")
    second = dy("build", "-t", "app:1", str(ctx), check=True)
    assert _steps(second.stdout) == {2: "CACHED", 3: "CACHED", 4: "CACHED", 5: "CACHED", 6: "CACHED"}
    assert _image_id(dy, "app:1") == image
    assert dy.run("app:1", check=True).stdout == "a\nb\n"


def test_one_changed_file_rebuilds_from_its_step(dy: Dockyard, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    dy("build", "-t", "app:1", str(ctx), check=True)
    (ctx / "src/b.txt").write_text("changed\n")
    os.utime(ctx / "deps.txt", (1, 1))  # times are not content: no rebuild for this one
    again = dy("build", "-t", "app:1", str(ctx), check=True)
    assert _steps(again.stdout) == {2: "CACHED", 3: "CACHED", 4: "CACHED", 5: "DONE", 6: "DONE"}
    assert dy.run("app:1", check=True).stdout == "a\nchanged\n"


def test_prune_drops_the_cache(dy: Dockyard, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    dy("build", "-t", "app:1", str(ctx), check=True)
    dy("image", "prune", "-f", check=True)
    assert "CACHED" not in dy("build", "-t", "app:1", str(ctx), check=True).stdout
    pruned = dy("builder", "prune", "-f", check=True)
    assert "Deleted build cache records" in pruned.stdout
    assert "CACHED" not in dy("build", "-t", "app:1", str(ctx), check=True).stdout
    # The tagged image itself survives both.
    assert dy.run("app:1", check=True).stdout == "a\nb\n"


def test_source_date_epoch_makes_layers_reproducible(dy: Dockyard, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    ids, layers = set(), set()
    for _ in range(2):
        dy("build", "--no-cache", "-t", "app:1", "--build-arg", f"SOURCE_DATE_EPOCH={env['SOURCE_DATE_EPOCH']}",
           str(ctx), check=True)  # fmt: skip
        doc = json.loads(dy("image", "inspect", "app:1", check=True).stdout)[0]
        ids.add(doc["Id"])
        layers.add(tuple(doc["RootFS"]["Layers"]))
        assert doc["Created"].startswith("2023-11-14T22:13:20")
    assert len(ids) == 1 and len(layers) == 1


def test_failing_run_names_the_step_and_exit_code(dy: Dockyard, tmp_path: Path) -> None:
    ctx = _context(tmp_path, f"FROM {IMAGE}\nRUN echo before\nRUN exit 3\nRUN echo never\n")
    result = dy("build", "-t", "bad:1", str(ctx))
    assert result.returncode == 1
    assert "step 3/4 RUN exit 3" in result.stderr
    assert "exit code: 3" in result.stderr
    assert "never" not in result.stdout
    assert "No such image" in dy("image", "inspect", "bad:1").stderr + dy("image", "inspect", "bad:1").stdout


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        (f"FROM {IMAGE}\nRUN true\nCOPPY a b\n", "line 3: unknown instruction: COPPY"),
        (f"FROM {IMAGE}\nCOPY missing.txt /x\n", '"missing.txt" not found in the build context'),
        (f"FROM {IMAGE}\nCOPY src/*.md /x/\n", '"src/*.md" not found'),
        (f"FROM {IMAGE}\nADD https://example.com/file.tar /x\n", "no network access"),
        (f"FROM {IMAGE}\nENV A=${{B\n", "line 2"),
        ("FROM scratch\nRUN true\n", "did not complete successfully"),
    ],
)
def test_errors(dy: Dockyard, tmp_path: Path, dockerfile: str, message: str) -> None:
    ctx = _context(tmp_path, dockerfile)
    result = dy("build", "-t", "bad:1", str(ctx))
    assert result.returncode == 1
    assert message in result.stderr


def test_dockerignore_target_build_args_and_labels(dy: Dockyard, tmp_path: Path) -> None:
    dockerfile = f"""ARG FROM_IMAGE={IMAGE}
FROM $FROM_IMAGE AS first
ARG WHO=nobody
RUN echo "first $WHO" > /who
FROM $FROM_IMAGE AS second
COPY --from=first /who /who
COPY . /ctx/
CMD ["sh", "-c", "cat /who; ls -A /ctx | sort"]
FROM $FROM_IMAGE AS third
RUN exit 9
"""
    ctx = _context(tmp_path, dockerfile)
    (ctx / "note.log").write_text("ignored\n")
    (ctx / ".dockerignore").write_text("*.log\nsrc\n!src/a.txt\n")
    result = dy(
        "build", "--target", "second", "--build-arg", "WHO=me", "--build-arg", "UNUSED=1",
        "--label", "org.example=yes", "-t", "multi:1", str(ctx), check=True,
    )  # fmt: skip
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in result.stdout
    assert dy.run("multi:1", check=True).stdout == "first me\n.dockerignore\nDockerfile\ndeps.txt\nsrc\n"
    assert dy.run("multi:1", "ls", "/ctx/src", check=True).stdout == "a.txt\n"
    config = json.loads(dy("image", "inspect", "multi:1", check=True).stdout)[0]["Config"]
    assert config["Labels"] == {"org.example": "yes"}


def test_dockerfile_from_stdin_without_context(dy: Dockyard) -> None:
    result = dy("build", "-q", "-t", "stdin:1", "-", input=f"FROM {IMAGE}\nRUN echo hi > /hi\nCMD cat /hi\n")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", result.stdout)
    assert dy.run("stdin:1", check=True).stdout == "hi\n"
    copy = dy("build", "-t", "stdin:2", "-", input=f"FROM {IMAGE}\nCOPY a /a\n")
    assert copy.returncode == 1 and "no build context" in copy.stderr


def test_run_network_none(dy: Dockyard, tmp_path: Path) -> None:
    dockerfile = f"FROM {IMAGE}\nRUN --network=none ls /sys/class/net > /none\nRUN ls /sys/class/net > /host\n"
    dy("build", "-t", "net:1", str(_context(tmp_path, dockerfile)), check=True)
    assert dy.run("net:1", "cat", "/none", check=True).stdout == "lo\n"
    assert dy.run("net:1", "cat", "/host", check=True).stdout.split() == sorted(os.listdir("/sys/class/net"))


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    server = start_registry(tmp_path / "registry")
    yield server
    server.stop()


def test_build_push_remove_pull_run_without_docker(dy: Dockyard, tmp_path: Path, registry: RegistryProcess) -> None:
    ctx = _context(tmp_path, 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "echo", "scratch"]\n')
    shutil.copy2(require_busybox(), ctx / "busybox")
    ref = f"{registry.address}/demo/scratch:1"
    dy("build", "-t", ref, str(ctx), check=True)
    dy("tag", ref, f"{registry.address}/demo/scratch:2", check=True)
    pushed = dy("push", "--all-tags", f"{registry.address}/demo/scratch", check=True)
    assert "The push refers to repository" in pushed.stdout
    assert "Pushed" in pushed.stdout
    assert re.search(r"^1: digest: sha256:[0-9a-f]{64} size: \d+$", pushed.stdout, re.M)
    assert re.search(r"^2: digest: sha256:[0-9a-f]{64} size: \d+$", pushed.stdout, re.M)
    dy("rmi", ref, f"{registry.address}/demo/scratch:2", check=True)
    dy("image", "prune", "-f", check=True)
    dy("pull", ref, check=True)
    assert dy.run(ref, check=True).stdout == "scratch\n"
    missing = dy("push", f"{registry.address}/demo/nothing:1")
    assert missing.returncode == 1 and "does not exist locally" in missing.stderr


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    htpasswd = tmp_path / "htpasswd"
    dy_serve = Dockyard(tmp_path / "unused")
    dy_serve("user", "add", "alice", "--password-stdin", "--file", str(htpasswd), input="s3cret-pass\n", check=True)
    port = free_port()
    config = {
        "auth": {
            "htpasswd": {"path": str(htpasswd)},
            "token": {"service": f"127.0.0.1:{port}", "issuer": "dockyard-build-test"},
            "tokenserver": {"path": "/auth/token"},
            "access": {"rules": [{"repositories": ["team/*"], "who": ["user:alice"], "actions": ["pull", "push"]}]},
        }
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    server = start_registry(tmp_path / "registry", config=path, port=port)
    yield server
    server.stop()


def test_push_uses_the_login_and_mounts_across_repositories(
    dy: Dockyard, tmp_path: Path, token_registry: RegistryProcess
) -> None:
    ctx = _context(tmp_path, "FROM scratch\nCOPY busybox /bin/busybox\n")
    shutil.copy2(require_busybox(), ctx / "busybox")
    base = f"{token_registry.address}/team/base:1"
    dy("build", "-t", base, str(ctx), check=True)
    refused = dy("push", base)
    assert refused.returncode == 1 and "unauthorized" in refused.stderr.lower(), refused.stderr
    dy("login", "-u", "alice", "--password-stdin", token_registry.address, input="s3cret-pass\n", check=True)
    assert "Pushed" in dy("push", base, check=True).stdout
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY deps.txt /deps.txt\n")
    app = f"{token_registry.address}/team/app:1"
    dy("build", "-t", app, str(ctx), check=True)
    pushed = dy("push", app, check=True).stdout
    assert "Mounted from team/base" in pushed and "Pushed" in pushed, pushed


def test_heredocs(dy: Dockyard) -> None:
    dockerfile = f"""FROM {IMAGE}
ARG WHO=world
RUN <<EOF
echo "script line one" > /one
echo "for $WHO" >> /one
EOF
RUN cat <<-'RAW' > /two && echo done >> /two
\tkept $WHO as written
\tRAW
COPY <<greeting.txt <<"plain.txt" /files/
hello ${{WHO}} "quoted" \\$literal
greeting.txt
no $WHO here
plain.txt
CMD ["cat", "/one", "/two", "/files/greeting.txt", "/files/plain.txt"]
"""
    dy("build", "-t", "heredoc:1", "-", input=dockerfile, check=True)
    assert dy.run("heredoc:1", check=True).stdout == (
        'script line one\nfor world\nkept $WHO as written\ndone\nhello world "quoted" $literal\nno $WHO here\n'
    )
