"""`dockyard build`: a Dockerfile's stages executed in order into the local image store.

Each stage starts from an image (pulled when missing, or with --pull), `scratch` or an earlier stage, and
carries the image config, the layers, the history, the build args in scope and the cache key so far. RUN,
COPY, ADD and a WORKDIR that creates its directory make a layer each (none when nothing changed, as
Docker's empty layers); every other instruction only changes the config. Only the stages the target
needs are built (BuildKit's rule)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import posixpath
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from oci import mediatypes as mt
from oci.digest import Digest
from oci.platform import InvalidPlatform, Platform
from oci.reference import InvalidReference, Reference
from runtime.build import metadata
from runtime.build.cache import BuildCache, CachedStep, LayerRef, step_key
from runtime.build.copying import CopySpec, perform_copy
from runtime.build.dockerfile import Dockerfile, DockerfileError, Instruction, parse, parse_line
from runtime.build.ignore import IgnoreRules, read_dockerignore
from runtime.build.layer import is_empty, write_layer
from runtime.build.overlay import StepError, in_overlay
from runtime.build.shellwords import ExpandError, expand, expand_heredoc, expand_words
from runtime.build.sources import SourceError, checksum
from runtime.imageconfig import DEFAULT_PATH
from runtime.images import ImageStore, LocalImage
from runtime.layers import unpack
from runtime.rootfs import resolve_in_root
from runtime.spec import NetworkMode
from runtime.users import UserError, read_from_layers, resolve_user

__all__ = ["BuildError", "BuildOptions", "BuildResult", "Builder"]

DEFAULT_SHELL = ("/bin/sh", "-c")
_COMMENT = "dockyard build"
# Docker's predefined args: usable in RUN without an ARG line, never a cache miss by themselves.
_PROXY_ARGS = frozenset(
    {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy"}
)
_HEREDOC_MARK = re.compile(r"<<-?[\"']?([a-zA-Z0-9_][a-zA-Z0-9_.-]*)[\"']?")
_MEDIA_TYPES = {
    mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": mt.OCI_LAYER,
}


class BuildError(Exception):
    pass


@dataclass(frozen=True)
class BuildOptions:
    dockerfile: str
    context: Path | None
    dockerfile_path: Path | None = None
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    platform: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    quiet: bool = False
    network: NetworkMode = "host"


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    manifest_digest: str
    tags: tuple[str, ...]
    steps: int
    cached: int


@dataclass
class Stage:
    index: int
    name: str
    platform: Platform
    image: dict[str, Any]  # the image config without rootfs and history
    layers: list[LayerRef]
    history: list[dict[str, Any]]
    key: str
    args: dict[str, str]  # build args in scope that have a value
    cmd_set: bool = False

    @property
    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = self.image.setdefault("config", {})
        return cfg

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def env(self) -> dict[str, str]:
        """What variables expand to: build args, overridden by ENV."""
        return {**self.args, **metadata.env_dict(self.config)}


def _now(epoch: int | None) -> str:
    t = float(epoch) if epoch is not None else time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _source_date_epoch(build_args: Mapping[str, str]) -> int | None:
    raw = build_args.get("SOURCE_DATE_EPOCH", os.environ.get("SOURCE_DATE_EPOCH", ""))
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BuildError(f"invalid SOURCE_DATE_EPOCH {raw!r}: expected seconds since 1970") from None


class Builder:
    def __init__(self, store: ImageStore, options: BuildOptions, out: TextIO | None = None) -> None:
        self.store = store
        self.options = options
        self.out = out or sys.stdout
        self.cache = BuildCache(store, enabled=not options.no_cache)
        self.epoch = _source_date_epoch(options.build_args)
        self.consumed: set[str] = set()
        self.step_no = 0
        self.total = 0
        self.cached = 0
        self.rules: IgnoreRules | None = None
        self.escape = "\\"
        self._globals: dict[str, str] = {}
        try:
            self.platform = Platform.parse(options.platform) if options.platform else Platform.host()
        except InvalidPlatform as exc:
            raise BuildError(str(exc)) from None

    # --- output ------------------------------------------------------------------------------------------------

    def say(self, line: str) -> None:
        if not self.options.quiet:
            print(line, file=self.out, flush=True)

    @contextlib.contextmanager
    def quiet_output(self) -> Iterator[None]:
        """With -q a RUN's own output is not shown either."""
        if not self.options.quiet:
            yield
            return
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, devnull):
                os.close(fd)

    # --- the build ---------------------------------------------------------------------------------------------

    def build(self) -> BuildResult:
        try:
            dockerfile = parse(self.options.dockerfile)
        except DockerfileError as exc:
            raise BuildError(str(exc)) from None
        for warning in dockerfile.warnings:
            self.say(f"[WARNING] {warning}")
        if self.options.context is not None:
            self.rules = read_dockerignore(self.options.context, self.options.dockerfile_path)
        self.store.ensure_dirs()
        with self.store.pulling():
            return self._build(dockerfile)

    def _build(self, dockerfile: Dockerfile) -> BuildResult:
        self.escape = dockerfile.escape
        global_args = self._global_args(dockerfile)
        self._globals = global_args
        stages = self._split(dockerfile)
        names = {self._stage_name(i, ins): i for i, (ins, _) in enumerate(stages)}
        target = len(stages) - 1
        if self.options.target:
            wanted = self.options.target.lower()
            if wanted not in names:
                raise BuildError(f"failed to reach build target {self.options.target} in Dockerfile")
            target = names[wanted]
        needed = self._needed(stages, names, global_args, target)
        self.total = sum(1 + len(body) for i, (_, body) in enumerate(stages) if i in needed)
        built: dict[int, Stage] = {}
        for index, (from_ins, body) in enumerate(stages):
            if index not in needed:
                continue
            stage = self._from(index, from_ins, global_args, names, built)
            for ins in body:
                self._step(stage, ins, names, built)
            built[index] = stage
        unused = sorted(set(self.options.build_args) - self.consumed - _PROXY_ARGS - {"SOURCE_DATE_EPOCH"})
        if unused:
            self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
        return self._finish(built[target])

    def _global_args(self, dockerfile: Dockerfile) -> dict[str, str]:
        host = Platform.host()
        values = {
            "TARGETPLATFORM": str(self.platform),
            "TARGETOS": self.platform.os,
            "TARGETARCH": self.platform.architecture,
            "TARGETVARIANT": self.platform.variant or "",
            "BUILDPLATFORM": str(host),
            "BUILDOS": host.os,
            "BUILDARCH": host.architecture,
            "BUILDVARIANT": host.variant or "",
        }
        for ins in dockerfile.instructions:
            if ins.keyword == "FROM":
                break
            self._declare_args(values, ins, values, {})
        return values

    def _declare_args(
        self, scope: dict[str, str], ins: Instruction, env: Mapping[str, str], inherited: Mapping[str, str]
    ) -> None:
        for word in ins.args:
            name, has_default, default = word.partition("=")
            try:
                name = expand(name, env, self.escape)
                value = expand(default, env, self.escape) if has_default else None
            except ExpandError as exc:
                raise BuildError(f"dockerfile parse error on line {ins.line}: {exc}") from None
            if not name:
                raise BuildError(f"dockerfile parse error on line {ins.line}: ARG names can not be blank")
            if name in self.options.build_args:
                self.consumed.add(name)
                scope[name] = self.options.build_args[name]
            elif value is not None:
                scope[name] = value
            elif name in inherited:
                scope[name] = inherited[name]
            else:
                scope.pop(name, None)

    @staticmethod
    def _split(dockerfile: Dockerfile) -> list[tuple[Instruction, list[Instruction]]]:
        stages: list[tuple[Instruction, list[Instruction]]] = []
        for ins in dockerfile.instructions:
            if ins.keyword == "FROM":
                stages.append((ins, []))
            elif stages:
                stages[-1][1].append(ins)
        return stages

    @staticmethod
    def _stage_name(index: int, ins: Instruction) -> str:
        return ins.args[2].lower() if len(ins.args) == 3 else str(index)

    def _needed(
        self,
        stages: list[tuple[Instruction, list[Instruction]]],
        names: Mapping[str, int],
        global_args: Mapping[str, str],
        target: int,
    ) -> set[int]:
        needed: set[int] = set()

        def visit(i: int) -> None:
            if i in needed:
                return
            needed.add(i)
            from_ins, body = stages[i]
            base = self._expand_global(from_ins.args[0], global_args).lower()
            if base in names and names[base] < i:
                visit(names[base])
            for ins in body:
                source = ins.flag("from") if ins.keyword == "COPY" else None
                if source is None:
                    continue
                ref = self._expand_global(source, global_args).lower()
                if ref in names and names[ref] < i:
                    visit(names[ref])
                elif ref.isdigit() and int(ref) < i:
                    visit(int(ref))

        visit(target)
        return needed

    def _expand_global(self, text: str, env: Mapping[str, str]) -> str:
        try:
            return expand(text, env, self.escape)
        except ExpandError:
            return text

    # --- FROM --------------------------------------------------------------------------------------------------

    def _announce(self, stage_label: str, text: str) -> int:
        self.step_no += 1
        self.say(f"#{self.step_no} [{stage_label} {self.step_no}/{self.total}] {text}")
        return self.step_no

    def _from(
        self,
        index: int,
        ins: Instruction,
        global_args: Mapping[str, str],
        names: Mapping[str, int],
        built: Mapping[int, Stage],
    ) -> Stage:
        base = self._expand(ins, ins.args[0], global_args)
        name = ins.args[2].lower() if len(ins.args) == 3 else str(index)
        label = ins.args[2] if len(ins.args) == 3 else f"stage-{index}"
        self._announce(label, f"FROM {base}" + (f" AS {ins.args[2]}" if len(ins.args) == 3 else ""))
        platform_flag = ins.flag("platform")
        platform = self.platform
        if platform_flag:
            try:
                platform = Platform.parse(self._expand(ins, platform_flag, global_args))
            except InvalidPlatform as exc:
                raise BuildError(f"line {ins.line}: {exc}") from None
        if base.lower() in names and names[base.lower()] < index:
            parent = built[names[base.lower()]]
            stage = Stage(
                index,
                name,
                parent.platform,
                copy.deepcopy(parent.image),
                list(parent.layers),
                copy.deepcopy(parent.history),
                parent.key,
                {},
            )
        elif base == "scratch":
            # BuildKit's empty image: WorkingDir "/" (the classic builder left it empty).
            image = {"architecture": platform.architecture, "os": platform.os, "config": {"WorkingDir": "/"}}
            if platform.variant:
                image["variant"] = platform.variant
            stage = Stage(index, name, platform, image, [], [], step_key("scratch", str(platform)), {})
        else:
            stage = self._from_image(index, name, base, platform, platform_flag is not None)
        env = metadata.env_dict(stage.config)
        if "PATH" not in env and stage.image.get("os", "linux") == "linux":
            stage.config["Env"] = [f"PATH={DEFAULT_PATH}", *(stage.config.get("Env") or [])]
        triggers = list(stage.config.get("OnBuild") or [])
        stage.config["OnBuild"] = None
        for trigger in triggers:
            try:
                sub = parse_line(str(trigger), ins.line, self.escape)
            except DockerfileError as exc:
                raise BuildError(f"ONBUILD trigger {trigger!r} of {base}: {exc.reason}") from None
            self.total += 1
            self._step(stage, sub, names, built)
        return stage

    def _load_image(self, ref: str, platform: Platform, explicit: bool) -> LocalImage:
        image = None if self.options.pull else self.store.resolve(ref)
        if image is not None and explicit and not platform.matches(Platform.of(image.config)):
            image = None
        if image is not None:
            return image
        from runtime.pull import PullError, pull_image

        try:
            return asyncio.run(
                pull_image(self.store, ref, platform=str(platform), out=self.out, progress=not self.options.quiet)
            )
        except PullError as exc:
            raise BuildError(f"failed to resolve source image {ref}: {exc}") from None

    def _from_image(self, index: int, name: str, ref: str, platform: Platform, explicit: bool) -> Stage:
        try:
            Reference.parse(ref)
        except InvalidReference as exc:
            raise BuildError(f"invalid base image reference {ref!r}: {exc}") from None
        image = self._load_image(ref, platform, explicit)
        manifest = json.loads(self.store.get_blob(image.manifest_digest))
        diff_ids = image.config.get("rootfs", {}).get("diff_ids", [])
        layers = [
            LayerRef(
                str(diff_id),
                str(desc["digest"]),
                int(desc["size"]),
                _MEDIA_TYPES.get(str(desc.get("mediaType")), str(desc.get("mediaType") or mt.OCI_LAYER_GZIP)),
            )
            for diff_id, desc in zip(diff_ids, manifest.get("layers", []), strict=True)
        ]
        config = copy.deepcopy(image.config)
        config.pop("rootfs", None)
        history = list(config.pop("history", None) or [])
        for key in ("container", "container_config", "docker_version", "created", "id", "parent"):
            config.pop(key, None)
        return Stage(index, name, Platform.of(image.config), config, layers, history, step_key("image", image.id), {})

    # --- one instruction ---------------------------------------------------------------------------------------

    def _expand(self, ins: Instruction, text: str, env: Mapping[str, str]) -> str:
        try:
            return expand(text, env, self.escape)
        except ExpandError as exc:
            raise BuildError(f"dockerfile parse error on line {ins.line}: {ins.keyword}: {exc}") from None

    def _expand_all(self, ins: Instruction, words: tuple[str, ...], env: Mapping[str, str]) -> list[str]:
        if ins.json:
            return [self._expand(ins, w, env) for w in words]
        try:
            return [x for w in words for x in expand_words(w, env, self.escape)]
        except ExpandError as exc:
            raise BuildError(f"dockerfile parse error on line {ins.line}: {ins.keyword}: {exc}") from None

    def _history(self, stage: Stage, text: str, created: str, empty: bool) -> None:
        entry: dict[str, Any] = {"created": created, "created_by": text, "comment": _COMMENT}
        if empty:
            entry["empty_layer"] = True
        stage.history.append(entry)

    def _step(self, stage: Stage, ins: Instruction, names: Mapping[str, int], built: Mapping[int, Stage]) -> None:
        label = stage.name if not stage.name.isdigit() else f"stage-{stage.index}"
        self._announce(label, ins.original)
        keyword = ins.keyword
        env = stage.env()
        config = stage.config
        try:
            if keyword == "ARG":
                self._declare_args(stage.args, ins, env, self._global_scope)
                return
            if keyword in ("RUN", "COPY", "ADD", "WORKDIR"):
                self._filesystem_step(stage, ins, env, names, built)
                return
            text = ins.original
            if keyword == "ENV":
                pairs = [
                    (self._expand(ins, ins.args[i], env), self._expand(ins, ins.args[i + 1], env))
                    for i in range(0, len(ins.args), 2)
                ]
                for key, value in pairs:
                    metadata.set_env(config, key, value)
                text = "ENV " + " ".join(f"{k}={v}" for k, v in pairs)
            elif keyword == "LABEL":
                pairs = [
                    (self._expand(ins, ins.args[i], env), self._expand(ins, ins.args[i + 1], env))
                    for i in range(0, len(ins.args), 2)
                ]
                metadata.labels(config, pairs)
                text = "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
            elif keyword == "USER":
                config["User"] = self._expand(ins, ins.args[0], env)
                text = f"USER {config['User']}"
            elif keyword == "EXPOSE":
                ports = self._expand_all(ins, ins.args, env)
                metadata.expose(config, ports)
                text = "EXPOSE " + " ".join(ports)
            elif keyword == "VOLUME":
                paths = self._expand_all(ins, ins.args, env)
                metadata.volume(config, paths)
                text = "VOLUME " + json.dumps(paths)
            elif keyword == "STOPSIGNAL":
                signal = self._expand(ins, ins.args[0], env)
                from runtime.container import parse_signal
                from runtime.containers import ContainerError

                try:
                    parse_signal(signal)
                except ContainerError as exc:
                    raise metadata.MetadataError(f"failed to process {signal!r}: {exc}") from None
                config["StopSignal"] = signal
                text = f"STOPSIGNAL {signal}"
            elif keyword == "SHELL":
                config["Shell"] = list(ins.args)
            elif keyword == "CMD":
                config["Cmd"] = metadata.shell_or_exec(ins.args, ins.json, stage.shell)
                stage.cmd_set = True
                text = f"CMD {json.dumps(config['Cmd'])}"
            elif keyword == "ENTRYPOINT":
                config["Entrypoint"] = metadata.shell_or_exec(ins.args, ins.json, stage.shell)
                if not stage.cmd_set:
                    config["Cmd"] = None
                text = f"ENTRYPOINT {json.dumps(config['Entrypoint'])}"
            elif keyword == "HEALTHCHECK":
                metadata.healthcheck(config, ins.args, ins.json, dict(ins.flags))
            elif keyword == "ONBUILD":
                assert ins.sub is not None
                rest = ins.args[0].split(None, 1)
                trigger = ins.sub.keyword + (f" {rest[1]}" if len(rest) > 1 else "")
                config["OnBuild"] = [*(config.get("OnBuild") or []), trigger]
            elif keyword == "MAINTAINER":
                stage.image["author"] = self._expand(ins, ins.args[0], env)
        except metadata.MetadataError as exc:
            raise BuildError(f"dockerfile parse error on line {ins.line}: {keyword}: {exc}") from None
        stage.key = step_key(stage.key, keyword, text)
        # Through the cache too, so that a fully cached build writes the same history, and the same image id.
        cached = self.cache.get(stage.key)
        if cached is None:
            cached = CachedStep(None, _now(self.epoch))
            self.cache.put(stage.key, cached)
        self._history(stage, text, cached.created, empty=True)

    @property
    def _global_scope(self) -> dict[str, str]:
        return self._globals

    # --- steps that change the filesystem ----------------------------------------------------------------------

    def _layer_dirs(self, layers: list[LayerRef]) -> list[Path]:
        return [self.store.layer_dir(layer.diff_id) for layer in layers]

    def _filesystem_step(
        self,
        stage: Stage,
        ins: Instruction,
        env: Mapping[str, str],
        names: Mapping[str, int],
        built: Mapping[int, Stage],
    ) -> None:
        keyword = ins.keyword
        if keyword == "WORKDIR":
            path = metadata.workdir_path(
                str(stage.config.get("WorkingDir") or "/"), self._expand(ins, ins.args[0], env)
            )
            stage.config["WorkingDir"] = path
            text = f"WORKDIR {path}"
            key = step_key(stage.key, keyword, path)

            def make(upper: Path, scratch: Path) -> None:
                in_overlay(self._layer_dirs(stage.layers), upper, scratch, lambda root, _v: _mkdir(root, path))

        elif keyword == "RUN":
            text, key, make = self._run(stage, ins)
        else:
            text, key, make = self._copy(stage, ins, env, names, built)
        cached = self.cache.get(key)
        if cached is not None:
            self.cached += 1
            self.say(f"#{self.step_no} CACHED")
        else:
            started = time.monotonic()
            cached = self._execute(make)
            self.cache.put(key, cached)
            self.say(f"#{self.step_no} DONE {time.monotonic() - started:.1f}s")
        stage.key = key
        if cached.layer is not None:
            stage.layers.append(cached.layer)
        self._history(stage, text, cached.created, empty=cached.layer is None)

    def _execute(self, make: Any) -> CachedStep:
        scratch = self.store.tempdir()
        try:
            upper = scratch / "upper"
            upper.mkdir()
            (scratch / "step").mkdir()
            change = make(upper, scratch / "step") or upper
            created = _now(self.epoch)
            if is_empty(change):
                return CachedStep(None, created)
            return CachedStep(self._commit(change, scratch), created)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _commit(self, change: Path, scratch: Path) -> LayerRef:
        tarred = write_layer(change, scratch / "layer.tar.gz", self.epoch)
        if not self.store.has_layer(tarred.diff_id):
            staged = self.store.tempdir()
            try:
                (staged / "diff").mkdir()
                with open(tarred.blob, "rb") as handle:
                    result = unpack(handle, staged / "diff")
                if result.diff_id != tarred.diff_id:
                    raise BuildError(f"layer {tarred.diff_id} unpacks to {result.diff_id}")
                self.store.commit_layer(staged, tarred.diff_id, result.size)
            except BaseException:
                shutil.rmtree(staged, ignore_errors=True)
                raise
        self.store.put_blob_file(tarred.blob, tarred.digest)
        return LayerRef(tarred.diff_id, tarred.digest, tarred.size, mt.OCI_LAYER_GZIP)

    def _run(self, stage: Stage, ins: Instruction) -> tuple[str, str, Any]:
        from runtime.build.runner import RunError, RunRequest, run_step

        network = (ins.flag("network") or "default").lower()
        if network not in ("default", "host", "none"):
            raise BuildError(f"line {ins.line}: RUN --network={network}: only default, host and none are supported")
        if ins.flag("mount") is not None or ins.flag("security") is not None:
            raise BuildError(f"line {ins.line}: RUN --mount and --security are not supported by dockyard build")
        mode: NetworkMode = "none" if network == "none" else self.options.network
        argv = metadata.shell_or_exec(ins.args, ins.json, stage.shell)
        if ins.heredocs and not ins.json:
            if len(ins.heredocs) == 1 and _HEREDOC_MARK.fullmatch(ins.args[0].strip()):
                argv = [*stage.shell, ins.heredocs[0].content]  # `RUN <<EOF`: the body is the script
            else:  # `RUN cmd <<EOF`: the shell reads the heredocs itself
                bodies = "".join(f"{doc.content}{doc.name}\n" for doc in ins.heredocs)
                argv = [*stage.shell, f"{ins.args[0]}\n{bodies}"]
        host = Platform.host()
        if (stage.platform.os, stage.platform.architecture) != (host.os, host.architecture):
            raise BuildError(
                f"line {ins.line}: RUN for {stage.platform} cannot execute on this {host} machine "
                "(dockyard build does not emulate other architectures)"
            )
        env = metadata.env_dict(stage.config)
        build_args = {k: v for k, v in stage.args.items() if k not in env}
        run_env = [*stage.config.get("Env", []), *(f"{k}={v}" for k, v in sorted(build_args.items()))]
        text = "RUN " + (json.dumps(argv) if ins.json else " ".join(argv))
        if build_args:
            text = f"RUN |{len(build_args)} " + " ".join(f"{k}={v}" for k, v in sorted(build_args.items())) + text[3:]
        key = step_key(stage.key, "RUN", argv, mode, sorted(build_args.items()))
        request = RunRequest(
            tuple(argv),
            tuple(run_env),
            str(stage.config.get("WorkingDir") or "/"),
            str(stage.config.get("User") or ""),
            mode,
        )
        step, shown = self.step_no, ins.original

        def make(upper: Path, scratch: Path) -> Path:
            try:
                with self.quiet_output():
                    code, change = run_step(self.store.root, self._layer_dirs(stage.layers), scratch, request)
            except (RunError, StepError) as exc:
                raise BuildError(f"step {step}/{self.total} {shown}: {exc}") from None
            if code != 0:
                raise BuildError(
                    f"step {step}/{self.total} {shown}: process {json.dumps(' '.join(argv))} "
                    f"did not complete successfully: exit code: {code}"
                )
            return change

        return text, key, make

    def _copy(
        self,
        stage: Stage,
        ins: Instruction,
        env: Mapping[str, str],
        names: Mapping[str, int],
        built: Mapping[int, Stage],
    ) -> tuple[str, str, Any]:
        keyword = ins.keyword
        words = self._expand_all(ins, ins.args, env)
        if len(words) < 2:
            raise BuildError(f"dockerfile parse error on line {ins.line}: {keyword} requires at least two arguments")
        sources, dest = words[:-1], words[-1]
        for source in sources:
            if "://" in source or source.startswith("git@"):
                if keyword == "COPY":
                    raise BuildError(f"line {ins.line}: COPY failed: source can't be a URL for COPY: {source}")
                raise BuildError(
                    f"line {ins.line}: ADD failed: {source} is a remote URL; dockyard build does not download: this "
                    "machine is assumed to have no network access. Fetch the file into the build context and COPY it"
                )
        _refuse_unsupported_copy_flags(ins)
        workdir = str(stage.config.get("WorkingDir") or "/")
        is_dir = dest.endswith(("/", "/.", "/..")) or dest in (".", "..")
        dest = posixpath.normpath(dest if dest.startswith("/") else posixpath.join(workdir, dest))
        if is_dir and not dest.endswith("/"):
            dest += "/"
        owner = self._owner(stage, ins, env)
        chmod_text = ins.flag("chmod")
        chmod = None
        if chmod_text:
            try:
                chmod = int(self._expand(ins, chmod_text, env), 8)
            except ValueError:
                raise BuildError(f"line {ins.line}: invalid --chmod={chmod_text}: expected an octal mode") from None
        source_from = ins.flag("from") if keyword == "COPY" else None
        views: dict[str, Sequence[Path]] = {}
        rules = None
        inline: dict[str, str] = {}
        if ins.heredocs:
            inline, sources = self._inline_sources(ins, sources, env)
            digest = step_key("heredocs", sorted(inline.items()))
        elif source_from is not None:
            ref = self._expand(ins, source_from, env)
            number = names.get(ref.lower(), int(ref) if ref.isdigit() else None)
            if number is not None and number not in built:
                raise BuildError(f"line {ins.line}: COPY --from={ref}: that stage is not built before this one")
            if number is not None:
                source_stage = built[number]
            else:
                image_stage = self._from_image(-1, ref, ref, self.platform, False)
                source_stage = image_stage
            views["src"] = self._layer_dirs(source_stage.layers)
            digest = step_key(source_stage.key, sources)
        else:
            if self.options.context is None:
                raise BuildError(
                    f"line {ins.line}: {keyword} failed: no build context (the Dockerfile came from stdin)"
                )
            rules = self.rules
            try:
                digest = checksum(self.options.context, sources, rules)
            except SourceError as exc:
                raise BuildError(f"line {ins.line}: {keyword} failed: {exc}") from None
        spec = CopySpec(keyword, tuple(sources), dest, owner, chmod, source_from is not None, rules)
        text = f"{keyword} " + (f"--from={source_from} " if source_from else "") + f"{' '.join(sources)} {dest}"
        key = step_key(stage.key, keyword, sources, dest, owner, chmod, digest)
        context = self.options.context
        step, shown = self.step_no, ins.original

        def make(upper: Path, scratch: Path) -> None:
            files = scratch / "heredocs"
            if inline:
                files.mkdir()
                for name, content in inline.items():
                    (files / name).write_text(content)
                    (files / name).chmod(0o644)

            def work(root: Path, mounted: dict[str, Path]) -> None:
                src_root = files if inline else mounted["src"] if "src" in mounted else context
                assert src_root is not None
                perform_copy(spec, root, src_root)

            try:
                in_overlay(self._layer_dirs(stage.layers), upper, scratch, work, views)
            except StepError as exc:
                raise BuildError(f"step {step}/{self.total} {shown}: {exc}") from None

        return text, key, make

    def _inline_sources(
        self, ins: Instruction, sources: list[str], env: Mapping[str, str]
    ) -> tuple[dict[str, str], list[str]]:
        """`COPY <<NAME DEST`: each heredoc a file called NAME (variables substituted unless quoted)."""
        docs = {doc.name: doc for doc in ins.heredocs}
        names = []
        for source in sources:
            match = _HEREDOC_MARK.fullmatch(source)
            if match is None or match.group(1) not in docs:
                raise BuildError(
                    f"line {ins.line}: {ins.keyword}: heredocs and files in one instruction are not supported"
                )
            names.append(match.group(1))
        contents = {}
        for name in names:
            doc = docs[name]
            try:
                contents[name] = expand_heredoc(doc.content, env, self.escape) if doc.expand else doc.content
            except ExpandError as exc:
                raise BuildError(f"dockerfile parse error on line {ins.line}: heredoc {name}: {exc}") from None
        return contents, names

    def _owner(self, stage: Stage, ins: Instruction, env: Mapping[str, str]) -> tuple[int, int] | None:
        chown = ins.flag("chown")
        if not chown:
            return None
        text = self._expand(ins, chown, env)
        group = text.partition(":")[2]
        try:
            info = resolve_user(text, read_from_layers(self._layer_dirs(stage.layers)))
        except UserError as exc:
            raise BuildError(f"line {ins.line}: {ins.keyword} --chown={text}: {exc}") from None
        # Docker: a user without a group means the group with the user's number.
        return info.uid, info.gid if group else info.uid

    # --- the image ---------------------------------------------------------------------------------------------

    def _finish(self, stage: Stage) -> BuildResult:
        image = copy.deepcopy(stage.image)
        config = image.setdefault("config", {})
        if self.options.labels:
            metadata.labels(config, sorted(self.options.labels.items()))
        if not config.get("OnBuild"):
            config.pop("OnBuild", None)
        created = stage.history[-1]["created"] if stage.history else _now(self.epoch)
        document = {
            **image,
            "created": created,
            "config": {k: v for k, v in config.items() if v is not None},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in stage.layers]},
            "history": stage.history,
        }
        config_bytes = json.dumps(document, separators=(",", ":")).encode()
        config_digest = str(Digest.of(config_bytes))
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [layer.descriptor() for layer in stage.layers],
        }
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        manifest_digest = str(Digest.of(manifest_bytes))
        self.store.put_blob(config_bytes, config_digest)
        self.store.put_blob(manifest_bytes, manifest_digest)
        tags = []
        for tag in self.options.tags:
            try:
                reference = Reference.parse(tag)
            except InvalidReference as exc:
                raise BuildError(f"invalid tag {tag!r}: {exc}") from None
            self.store.tag(str(reference), manifest_digest)
            tags.append(reference.familiar())
        if not tags:
            self.say("[Warning] no tag given (-t): the store keeps images by name, so this one lasts until a prune")
        return BuildResult(config_digest, manifest_digest, tuple(tags), self.step_no, self.cached)


def _mkdir(root: Path, path: str) -> None:
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = posixpath.join(current, part)
        target = resolve_in_root(root, current)
        if not os.path.lexists(target):
            os.mkdir(target, 0o755)
            os.chmod(target, 0o755)
        elif not target.is_dir():
            raise StepError(f"WORKDIR {path}: {current} is not a directory")


_UNSUPPORTED_COPY_FLAGS = {
    "parents": "is not supported by dockyard build: copy each directory to its own destination",
    "exclude": "is not supported by dockyard build: leave the files out with .dockerignore",
    "checksum": (
        "verifies a remote URL, which dockyard build does not download (this machine is assumed to have "
        "no network access): fetch the file into the build context and COPY it"
    ),
    "keep-git-dir": (
        "is for git URLs, which dockyard build does not clone (this machine is assumed to have no network "
        "access): clone into the build context and COPY it"
    ),
}


def _refuse_unsupported_copy_flags(ins: Instruction) -> None:
    for name, why in _UNSUPPORTED_COPY_FLAGS.items():
        if ins.flag(name) is not None:
            raise BuildError(f"line {ins.line}: {ins.keyword} --{name} {why}")
