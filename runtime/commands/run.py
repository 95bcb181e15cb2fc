"""`dockyard run`: Docker's flags turned into a ContainerSpec, then create, start and attach."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from runtime import imageconfig, validate
from runtime.cgroups import Resources
from runtime.commands import runflags
from runtime.containers import Container, ContainerError, ContainerStore
from runtime.security import (
    Security,
    SecurityError,
    normalize_capabilities,
    parse_security_opts,
    tweak_capabilities,
)
from runtime.spec import ContainerSpec, Mount, NetworkMode, ProcessSpec
from runtime.users import UserError, read_from_layers, resolve_user
from runtime.volumes import VolumeError, VolumeStore

__all__ = ["add_run_arguments", "build_spec", "parse_bytes", "parse_mount", "parse_volume", "run_attached"]

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_ADJECTIVES = (
    "brave",
    "calm",
    "eager",
    "fancy",
    "gentle",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "merry",
    "nifty",
    "quirky",
    "serene",
    "tender",
    "vibrant",
    "witty",
    "zealous",
    "bold",
    "clever",
    "dreamy",
)
_NOUNS = (
    "hopper",
    "lovelace",
    "turing",
    "curie",
    "noether",
    "ritchie",
    "thompson",
    "torvalds",
    "knuth",
    "dijkstra",
    "hamilton",
    "babbage",
    "shannon",
    "liskov",
    "perlman",
    "wozniak",
    "kare",
    "goldberg",
    "allen",
    "sammet",
)


def parse_bytes(value: str) -> int:
    text = value.strip().lower().removesuffix("b") if value.lower().endswith(("kb", "mb", "gb", "tb")) else value
    text = text.strip().lower()
    unit = text[-1] if text and text[-1] in _UNITS else ""
    number = text[:-1] if unit else text
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError:
        raise ValueError(f"invalid size: {value!r}") from None


def parse_volume(value: str, volumes: VolumeStore) -> Mount:
    """-v HOST:CTR[:ro|rw], NAME:CTR[:ro|rw] or CTR alone (an anonymous volume); a missing host
    directory is created, as Docker does. Errors carry Docker's wording."""
    parts = value.split(":")
    if len(parts) > 3 or (len(parts) > 1 and not all(parts[:2])):
        raise ValueError(f"invalid spec: {value}: empty section between colons")
    if len(parts) == 1:
        parts = ["", parts[0]]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise ValueError(f"Error response from daemon: invalid mode: {mode}")
    source, target = parts[0], parts[1]
    if source.startswith(("/", ".")):
        path = Path(source).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return Mount(str(path), target, mode == "ro")
    return _volume_mount(source, target, mode == "ro", volumes)


def _volume_mount(name: str, target: str, readonly: bool, volumes: VolumeStore) -> Mount:
    try:
        if not name:
            name, data = volumes.create_anonymous()
        else:
            data = volumes.create(name)
    except VolumeError as exc:
        raise ValueError(f"Error response from daemon: {exc}") from None
    return Mount(str(data), target, readonly, kind="volume", volume=name)


def parse_mount(value: str, volumes: VolumeStore) -> Mount:
    """--mount type=bind|volume,source=...,target=...[,readonly]"""
    fields: dict[str, str] = {}
    for item in value.split(","):
        key, sep, val = item.partition("=")
        fields[key.strip()] = val if sep else "true"
    kind = fields.get("type", "volume")
    source = fields.get("source", fields.get("src", ""))
    target = fields.get("target", fields.get("destination", fields.get("dst", "")))
    readonly = fields.get("readonly", fields.get("ro", "false")).lower() in ("true", "1")
    if not target:
        raise ValueError(f'invalid argument "{value}" for "--mount" flag: target is required')
    if kind == "bind":
        invalid = 'Error response from daemon: invalid mount config for type "bind"'
        if not source:
            raise ValueError(f"{invalid}: field Source must not be empty")
        if not os.path.exists(source):
            raise ValueError(f"{invalid}: bind source path does not exist: {source}")
        return Mount(str(Path(source).resolve()), target, readonly)
    if kind == "volume":
        return _volume_mount(source, target, readonly, volumes)
    raise ValueError(f"unsupported mount type: {kind}")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--rm", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("--name", default="")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--mount", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--entrypoint")
    p.add_argument("-h", "--hostname")
    p.add_argument("-m", "--memory")
    p.add_argument("--cpus", type=float)
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--network", "--net", default="private", metavar="NETWORK")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[])
    p.add_argument("--ip", default=None)
    p.add_argument("--link", action="append", default=[], metavar="NAME[:ALIAS]")
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--init", action="store_true")
    p.add_argument("--platform")
    # Security: capabilities, privileged mode, no_new_privs, seccomp.
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--security-opt", action="append", default=[])
    p.add_argument("--detach-keys")
    runflags.add_arguments(p)
    from runtime.commands.createflags import add_create_arguments

    add_create_arguments(p)
    p.add_argument("image")
    p.add_argument("cmd", metavar="COMMAND", nargs=argparse.REMAINDER)


def build_spec(args: argparse.Namespace, image: object, store: ContainerStore, volumes: VolumeStore) -> ContainerSpec:
    """Raises ValueError with Docker's wording for any flag problem."""
    from runtime.commands.createflags import docker_fields

    config = dict(getattr(image, "config", {}).get("config") or {})
    layers = [Path(p) for p in getattr(image, "layer_dirs", [])]
    cid = store.new_id()
    # Docker names a host-network container after the host; otherwise after its short id.
    hostname = args.hostname or (socket.gethostname() if args.network == "host" else cid[:12])
    user = args.user if args.user is not None else config.get("User") or ""
    try:
        info = resolve_user(user, read_from_layers(layers))
    except UserError as exc:
        raise ValueError(str(exc)) from None
    overrides: list[str] = []
    for path in args.env_file:
        overrides += imageconfig.parse_env_file(Path(path).read_text())
    overrides += args.env
    try:
        argv = imageconfig.command(config, args.cmd, args.entrypoint)
        env = imageconfig.environment(config, overrides, hostname, info.home, args.tty)
    except imageconfig.ConfigError as exc:
        raise ValueError(str(exc)) from None
    mounts = [parse_volume(v, volumes) for v in args.volume] + [parse_mount(m, volumes) for m in args.mount]
    recorded = docker_fields(args, config)
    network: NetworkMode = args.network if args.network in ("none", "host") else "private"
    network_name = _user_network(args, store.root)
    spec = ContainerSpec(
        id=cid,
        name=args.name or _random_name(store),
        image=args.image,
        image_id=str(getattr(image, "id", "")),
        layers=tuple(str(p) for p in layers),
        process=ProcessSpec(
            args=tuple(argv),
            env=tuple(env),
            cwd=args.workdir or config.get("WorkingDir") or "/",
            uid=info.uid,
            gid=info.gid,
            groups=info.groups,
            terminal=args.tty,
            stdin=args.interactive,
            **runflags.process_fields(args),
        ),
        hostname=hostname,
        user=user,
        mounts=tuple(mounts),
        readonly_rootfs=args.read_only,
        network=network,
        network_name=network_name,
        links=tuple(_link(v) for v in args.link),
        **recorded,
        resources=Resources.from_cpus(
            args.cpus, memory=None if args.memory is None else parse_bytes(args.memory), pids=args.pids_limit
        ),
        init=args.init,
        auto_remove=args.rm,
        stop_signal=str(config.get("StopSignal") or "SIGTERM"),
        security=_security(args),
        **runflags.spec_fields(args),
    )
    problems = validate.validate(spec)
    if problems:
        raise ValueError("; ".join(problems))
    return spec


def _user_network(args: argparse.Namespace, root: Path) -> str:
    """The user network `--network` names ("" for the built-in ones), which must exist."""
    builtin = args.network in ("none", "host", "private", "bridge", "default")
    if builtin and args.network_alias:
        raise ValueError(
            "Error response from daemon: network-scoped alias is supported only for containers in user defined networks"
        )
    if builtin and args.ip:
        raise ValueError(
            "Error response from daemon: user specified IP address is supported on user defined networks only"
        )
    if builtin and args.link and args.network in ("none", "host"):
        raise ValueError(
            "Error response from daemon: conflicting options: host type networking can't be used with links. "
            "This would result in undefined behavior"
        )
    if builtin:
        return ""
    from runtime.networks.store import NetworkStore

    if NetworkStore(root).find(args.network) is None:
        raise ValueError(f"Error response from daemon: network {args.network} not found")
    return str(NetworkStore(root).get(args.network).name)


def _link(value: str) -> str:
    name, _, alias = value.partition(":")
    if not name:
        raise ValueError(f'invalid argument "{value}" for "--link" flag: bad format for links: {value}')
    return f"{name.lstrip('/')}:{alias or name.lstrip('/')}"


def _security(args: argparse.Namespace) -> Security:
    """--cap-add, --cap-drop, --privileged, --security-opt; a profile file is compiled here
    once so that a broken one fails `run` rather than the container's start."""
    from runtime import seccomp

    try:
        options = parse_security_opts(args.security_opt)
        security = Security(
            caps=tweak_capabilities(args.cap_add, args.cap_drop, args.privileged),
            privileged=args.privileged,
            no_new_privileges=options.get("no_new_privileges", False),
            seccomp=options.get("seccomp", seccomp.DEFAULT),
            cap_add=tuple(normalize_capabilities(args.cap_add)),
            cap_drop=tuple(normalize_capabilities(args.cap_drop)),
        )
        if not security.privileged and security.seccomp not in (seccomp.DEFAULT, seccomp.UNCONFINED):
            seccomp.filter_for(security.seccomp, security.caps)
    except (SecurityError, seccomp.ProfileError) as exc:
        raise ValueError(str(exc)) from None
    return security


def _pick(words: Sequence[str]) -> str:
    # os.urandom rather than the random module, which is not otherwise loaded on the run path.
    return words[int.from_bytes(os.urandom(4), "little") % len(words)]


def _random_name(store: ContainerStore) -> str:
    taken = {c.name for c in store.list()}
    while True:
        name = f"{_pick(_ADJECTIVES)}_{_pick(_NOUNS)}"
        if name not in taken:
            return name


def run_attached(
    store: ContainerStore,
    container: Container,
    detach: bool,
    stdin: bool,
    terminal: bool,
    detach_keys: bytes | None = None,
) -> int:
    """Start `container`; print its id when detached, else relay stdio and return its exit code
    (0 when the user detaches with the detach keys, as Docker)."""
    from runtime import container as lifecycle
    from runtime.attach import DEFAULT_DETACH_KEYS, Detached, relay

    outcome, sock = lifecycle.start(store, container)
    if not outcome.started:
        sock.close()
        print(
            f"dockyard: Error response from daemon: failed to create task for container: {outcome.error}",
            file=sys.stderr,
        )
        return outcome.exit_code if outcome.exit_code is not None else 125
    if detach:
        sock.close()
        print(container.id)
        return 0
    pid = container.state().pid

    def proxy(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous = {sig: signal.signal(sig, proxy) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        code = relay(sock, stdin=stdin, terminal=terminal, detach_keys=detach_keys or DEFAULT_DETACH_KEYS)
    except Detached:
        return 0
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code is None:
        with contextlib.suppress(ContainerError):
            lifecycle.wait_exited(container, 5)
            code = container.state().exit_code
    return 125 if code is None else code
