"""`dockyard build` on its own (issue 15): the cache (CACHED, one changed file rebuilds from its step,
the same image id when nothing changed, pruned by `image prune` and `builder prune`), reproducible
layers under SOURCE_DATE_EPOCH, the errors (failing RUN, syntax, missing COPY source, remote ADD),
.dockerignore, --target, --build-arg, a Dockerfile on stdin, RUN --network none, and build, push,
remove, pull and run through a real registry without Docker."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from oci.mediatypes import OCI_MANIFEST
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
    ids, layers, manifests, archives = set(), set(), set(), set()
    for how in ("build-arg", "build-arg", "environment"):
        if how == "build-arg":
            dy("build", "--no-cache", "-t", "app:1", "--build-arg", f"SOURCE_DATE_EPOCH={env['SOURCE_DATE_EPOCH']}",
               str(ctx), check=True)  # fmt: skip
        else:
            built = subprocess.run(
                [sys.executable, "-m", "dockyard", "build", "--no-cache", "-t", "app:1", str(ctx)],
                env={**dy.env, **env}, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
            )  # fmt: skip
            assert built.returncode == 0, built.stderr
        doc = json.loads(dy("image", "inspect", "app:1", check=True).stdout)[0]
        ids.add(doc["Id"])
        layers.add(tuple(doc["RootFS"]["Layers"]))
        manifests.add(doc["ManifestDigest"])
        archives.add(tuple(_layer_digests(dy, "docker.io/library/app:1")))
        assert doc["Created"].startswith("2023-11-14T22:13:20")
    # The same config, the same uncompressed layers, the same gzip'd archives and so the same manifest.
    assert (len(ids), len(layers), len(manifests), len(archives)) == (1, 1, 1, 1)


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
        (f"FROM {IMAGE}\nRUN --mount=type=cache,target=/c true\n", "line 2: RUN --mount and --security are not"),
        (f"FROM {IMAGE}\nCOPY --parents src/a.txt /x/\n", "line 2: COPY --parents is not supported"),
        (f"FROM {IMAGE}\nCOPY --exclude=*.txt src/ /x/\n", "line 2: COPY --exclude is not supported"),
        (f"FROM {IMAGE}\nADD --checksum=sha256:{'0' * 64} deps.txt /x\n", "ADD --checksum verifies a remote URL"),
        (f"FROM {IMAGE}\nADD --keep-git-dir=true deps.txt /x\n", "ADD --keep-git-dir is for git URLs"),
        (f"FROM {IMAGE}\nCOPY --nope=1 deps.txt /x\n", "line 2: unknown flag: --nope"),
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
    # Docker's `image build/tag/push` spellings, the same commands as build, tag and push.
    dy("image", "build", "-t", ref, str(ctx), check=True)
    dy("image", "tag", ref, f"{registry.address}/demo/scratch:2", check=True)
    dy("tag", ref, f"{registry.address}/other/scratch:3", check=True)
    pushed = dy("image", "push", "--all-tags", f"{registry.address}/demo/scratch", check=True)
    assert "The push refers to repository" in pushed.stdout
    assert "Pushed" in pushed.stdout
    assert re.search(r"^1: digest: sha256:[0-9a-f]{64} size: \d+$", pushed.stdout, re.M)
    assert re.search(r"^2: digest: sha256:[0-9a-f]{64} size: \d+$", pushed.stdout, re.M)
    dy("rmi", ref, f"{registry.address}/demo/scratch:2", check=True)
    dy("image", "prune", "-f", check=True)
    dy("pull", ref, check=True)
    assert dy.run(ref, check=True).stdout == "scratch\n"
    assert "3: digest" not in pushed.stdout  # --all-tags is every tag of that repository only
    missing = dy("push", f"{registry.address}/demo/nothing:1")
    assert missing.returncode == 1 and "does not exist locally" in missing.stderr
    both = dy("push", "-a", f"{registry.address}/demo/scratch:1")
    assert both.returncode == 1 and "tag can't be used with --all-tags/-a" in both.stderr


def test_push_on_a_terminal_draws_progress_bars(dy: Dockyard, tmp_path: Path, registry: RegistryProcess) -> None:
    """As `pull` does: a bar per layer on a terminal (rich), Docker's plain lines when piped."""
    ctx = _context(tmp_path, "FROM scratch\nCOPY busybox /bin/busybox\n")
    shutil.copy2(require_busybox(), ctx / "busybox")
    ref = f"{registry.address}/demo/bars:1"
    dy("build", "-t", ref, str(ctx), check=True)
    primary, secondary = pty.openpty()
    try:
        push = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "push", ref],
            env={**dy.env, "COLUMNS": "100", "TERM": "xterm"},
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=subprocess.PIPE,
        )
        os.close(secondary)
        drawn = b""
        while chunk := _read_pty(primary):  # read as it writes: a full terminal would block the push
            drawn += chunk
        _, errors = push.communicate(timeout=60)
    finally:
        os.close(primary)
    assert push.returncode == 0, errors
    text = drawn.decode(errors="replace")
    assert "\x1b[" in text, text  # cursor movement: a live display, not plain lines
    assert "Pushed" in text and "━" in text, text
    assert re.search(r"1: digest: sha256:[0-9a-f]{64}", text), text


def _read_pty(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the writer closed the terminal
        return b""


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


def _layer_digests(dy: Dockyard, ref: str) -> list[str]:
    store = dy.root / "images"
    record = json.loads((store / "repositories.json").read_text())["refs"][ref]
    manifest = json.loads((store / "blobs" / record["manifest"].replace(":", "/")).read_text())
    return [str(layer["digest"]) for layer in manifest["layers"]]


def _repository_has_blob(registry: RegistryProcess, repository: str, digest: str) -> bool:
    alg, _, hexpart = digest.partition(":")
    return (
        registry.root / "docker/registry/v2/repositories" / repository / "_layers" / alg / hexpart / "link"
    ).is_file()


def test_push_of_an_image_built_on_a_pulled_base(dy: Dockyard, tmp_path: Path, registry: RegistryProcess) -> None:
    """The issue's loop: pull a base from repository A, build FROM it, push to repository B of the same
    registry (the base layer is mounted, not uploaded), to a second registry (uploaded from the archive the
    pull kept), and the pulled base itself re-tagged, after its archive was lost (fetched again)."""
    ctx = _context(tmp_path, 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "echo", "base"]\n')
    shutil.copy2(require_busybox(), ctx / "busybox")
    base = f"{registry.address}/team-a/base:1"
    dy("build", "-t", base, str(ctx), check=True)
    dy("push", base, check=True)
    (base_layer,) = _layer_digests(dy, base)
    archive = dy.root / "images/blobs" / base_layer.replace(":", "/")
    dy("rmi", base, check=True)
    dy("builder", "prune", "-f", check=True)
    dy("image", "prune", "-f", check=True)
    assert not archive.exists(), "rmi and prune remove the archive with the image"
    dy("pull", base, check=True)
    assert archive.is_file(), "pull keeps the layer archive"

    (ctx / "Dockerfile").write_text(f'FROM {base}\nCOPY deps.txt /deps.txt\nCMD ["/bin/busybox", "cat", "/deps.txt"]\n')
    app = f"{registry.address}/team-b/app:1"
    dy("build", "-t", app, str(ctx), check=True)
    mounted = dy("push", app, check=True).stdout
    assert f"{base_layer[7:19]}: Mounted from team-a/base" in mounted, mounted
    assert mounted.count(": Pushed") == 1, mounted  # only the COPY layer is uploaded
    assert _repository_has_blob(registry, "team-b/app", base_layer)
    # The registry's access log: a POST to uploads answered 201 Created (not 202) is a mount that happened.
    assert registry.logs().count("POST /v2/team-b/app/blobs/uploads/ 201") == 1, registry.logs()

    second = start_registry(tmp_path / "registry2")
    try:
        elsewhere = f"{second.address}/team-b/app:1"
        dy("tag", app, elsewhere, check=True)
        uploaded = dy("push", elsewhere, check=True).stdout
        assert f"{base_layer[7:19]}: Pushed" in uploaded and "Mounted" not in uploaded, uploaded
        assert _repository_has_blob(second, "team-b/app", base_layer)

        # The pulled image unchanged under a new name, its archive lost (a store from before archives were
        # kept): fetched again from the repository it was pulled from, then uploaded.
        dy("rmi", elsewhere, check=True)
        mirror = f"{second.address}/mirror/base:1"
        dy("tag", base, mirror, check=True)
        archive.unlink()
        refetched = dy("push", mirror, check=True).stdout
        assert f"{base_layer[7:19]}: Fetching from {base}".removesuffix(":1") in refetched, refetched
        assert f"{base_layer[7:19]}: Pushed" in refetched, refetched
        assert archive.is_file()

        # What reached the second registry pulls and runs from an empty store.
        for ref in (app, base, mirror):
            dy("rmi", ref, check=True)
        dy("image", "prune", "-f", check=True)
        dy("pull", elsewhere, check=True)
        dy("pull", mirror, check=True)
        assert dy.run(elsewhere, check=True).stdout == "dep\n"
        assert dy.run(mirror, check=True).stdout == "base\n"
    finally:
        second.stop()


def test_copy_chmod_chown_globs_and_exec_form_run(dy: Dockyard, tmp_path: Path) -> None:
    """BuildKit's --chmod (the classic builder refuses it, so this is not compared with docker build):
    the mode of every file and directory copied, with --chown (the destination it creates too, as the
    filesystem case of test_build_docker shows for --chown alone); globs per path component; RUN's exec form
    runs without a shell (no expansion of $HOME)."""
    dockerfile = f"""FROM {IMAGE}
COPY --chmod=0640 deps.txt /c/deps.txt
COPY --chown=1000:50 --chmod=755 src/ /s/
COPY src/?.txt deps.* /g/
RUN ["/bin/echo", "exec $HOME"]
RUN ["/bin/sh", "-c", "echo exec form > /exec"]
CMD ["sh", "-c", "stat -c '%n %a %u:%g' /c/deps.txt /s /s/a.txt /s/b.txt; ls /g; cat /exec"]
"""
    result = dy("build", "-t", "modes:1", str(_context(tmp_path, dockerfile)), check=True)
    assert "exec $HOME" in result.stdout
    assert dy.run("modes:1", check=True).stdout == (
        "/c/deps.txt 640 0:0\n/s 755 1000:50\n/s/a.txt 755 1000:50\n/s/b.txt 755 1000:50\n"
        "a.txt\nb.txt\ndeps.txt\nexec form\n"
    )


def test_platform_flag_and_from_platform(dy: Dockyard, tmp_path: Path) -> None:
    """--platform names the image's platform (FROM scratch takes it; TARGETARCH follows it); RUN for another
    architecture is refused, as there is no emulation; FROM --platform=$BUILDPLATFORM runs on this machine."""
    other = "arm64" if os.uname().machine == "x86_64" else "amd64"
    host = "amd64" if os.uname().machine == "x86_64" else "arm64"
    ctx = _context(tmp_path, "FROM scratch\nARG TARGETARCH\nCOPY deps.txt /deps-$TARGETARCH\n")
    dy("build", "--platform", f"linux/{other}", "-t", "cross:1", str(ctx), check=True)
    doc = json.loads(dy("image", "inspect", "cross:1", check=True).stdout)[0]
    assert (doc["Os"], doc["Architecture"]) == ("linux", other)
    dockerfile = f"FROM --platform=$BUILDPLATFORM {IMAGE} AS tools\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n"
    dockerfile += "FROM scratch\nCOPY --from=tools /arch /arch\n"
    (ctx / "Dockerfile").write_text(dockerfile)
    dy("build", "--platform", f"linux/{other}", "-t", "cross:2", str(ctx), check=True)
    assert json.loads(dy("image", "inspect", "cross:2", check=True).stdout)[0]["Architecture"] == other
    (ctx / "Dockerfile").write_text(f"FROM --platform=linux/{host} {IMAGE}\nRUN true\n")
    dy("build", "-t", "cross:3", str(ctx), check=True)
    (ctx / "Dockerfile").write_text("FROM scratch\nRUN true\n")
    refused = dy("build", "--platform", f"linux/{other}", "-t", "cross:4", str(ctx))
    assert refused.returncode == 1
    assert f"line 2: RUN for linux/{other} cannot execute on this linux/{host} machine" in refused.stderr


def test_pull_flag_fetches_a_newer_base(dy: Dockyard, tmp_path: Path, registry: RegistryProcess) -> None:
    """Without --pull a base in the store is used as it is; with --pull the registry's current one."""
    ctx = _context(tmp_path, "FROM scratch\nCOPY deps.txt /version\n")
    base = f"{registry.address}/team/base"
    dy("build", "-t", f"{base}:1", str(ctx), check=True)
    (ctx / "deps.txt").write_text("two\n")
    dy("build", "-t", f"{base}:2", str(ctx), check=True)
    dy("push", "-a", base, check=True)
    dy("rmi", f"{base}:2", check=True)
    # The registry's :1 becomes what :2 is; the store's :1 stays the old one.
    manifest = httpx.get(f"{registry.url}/v2/team/base/manifests/2", headers={"Accept": OCI_MANIFEST})
    put = httpx.put(
        f"{registry.url}/v2/team/base/manifests/1",
        content=manifest.content,
        headers={"Content-Type": manifest.headers["content-type"]},
    )
    assert put.status_code == 201, put.text
    shutil.copy2(require_busybox(), ctx / "busybox")
    (ctx / "Dockerfile").write_text(
        f'FROM {base}:1\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "cat", "/version"]\n'
    )
    dy("build", "-t", "pulled:1", str(ctx), check=True)
    assert dy.run("pulled:1", check=True).stdout == "dep\n"
    again = dy("build", "--pull", "-t", "pulled:1", str(ctx), check=True)
    assert "Downloaded newer image" in again.stdout, again.stdout
    assert dy.run("pulled:1", check=True).stdout == "two\n"


def test_file_flag_its_own_dockerignore_stdin_with_context_and_several_tags(dy: Dockyard, tmp_path: Path) -> None:
    """-f names a Dockerfile anywhere; `<Dockerfile>.dockerignore` beside it wins over the context's;
    `-f -` reads the Dockerfile from stdin with a context; every -t names the same image."""
    ctx = _context(tmp_path, "not used\n")
    (ctx / ".dockerignore").write_text("src\n")
    elsewhere = tmp_path / "dockerfiles"
    elsewhere.mkdir()
    (elsewhere / "Build.df").write_text(f'FROM {IMAGE}\nCOPY . /ctx/\nCMD ["ls", "-A", "/ctx"]\n')
    (elsewhere / "Build.df.dockerignore").write_text("deps.txt\nDockerfile\n")
    dy("build", "-f", str(elsewhere / "Build.df"), "-t", "named:1", "-t", "named:2", str(ctx), check=True)
    assert dy.run("named:1", check=True).stdout == ".dockerignore\nsrc\n"
    assert _image_id(dy, "named:1") == _image_id(dy, "named:2")
    piped = dy("build", "-f", "-", "-t", "piped:1", str(ctx), input=f"FROM {IMAGE}\nCOPY deps.txt /deps\n")
    assert piped.returncode == 0, piped.stderr
    assert dy.run("piped:1", "cat", "/deps", check=True).stdout == "dep\n"
