"""The Compose verbs over the runtime's Python API: networks and volumes created under project
names, containers created in dependency order with create_container() (what `dockyard run` uses),
started, stopped and removed through runtime.container; found again by their labels."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from runtime.compose import names
from runtime.compose.health import HealthError, parse_duration, wait_healthy
from runtime.compose.project import Project
from runtime.compose.service import config_hash, run_arguments, service_image, service_networks
from runtime.compose.validate import ComposeError
from runtime.compose.values import items, mapping
from runtime.containers import Container, ContainerError, ContainerStore

__all__ = [
    "build",
    "containers",
    "down",
    "project_networks",
    "pull",
    "restart",
    "start",
    "stop",
    "up",
    "wait_exit",
]


def _root() -> Path:
    from runtime.images import default_root

    return default_root()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def containers(project: Project, services: list[str] | None = None) -> list[Container]:
    """The project's containers (by label), in the services' start order."""
    found = [c for c in ContainerStore(_root()).list() if c.spec.labels.get(names.PROJECT) == project.name]
    if services:
        found = [c for c in found if c.spec.labels.get(names.SERVICE) in services]
    order = {name: i for i, name in enumerate(project.order())}
    return sorted(found, key=lambda c: (order.get(c.spec.labels.get(names.SERVICE, ""), len(order)), c.name))


def _of_service(project: Project, service: str) -> Container | None:
    for c in containers(project, [service]):
        return c
    return None


def project_networks(project: Project) -> dict[str, tuple[str, dict[str, object]]]:
    """The runtime networks the project's services use: runtime name -> (key, declaration)."""
    declared = project.section("networks")
    result: dict[str, tuple[str, dict[str, object]]] = {}
    for service in project.order():
        wanted = project.services()[service].get("networks") or {"default": None}
        assert isinstance(wanted, dict)
        for key in wanted:
            entry = declared.get(key, {})
            result[names.network_name(project.name, key, entry)] = (key, entry)
    return result


def _ensure_networks(project: Project) -> None:
    from runtime.networks import NetworkError, create_network
    from runtime.networks.store import NetworkStore

    store = NetworkStore(_root())
    for name, (key, entry) in project_networks(project).items():
        if store.find(name) is not None:
            continue
        if entry.get("external"):
            raise ComposeError(
                f"Network {name} declared as external, but could not be found. Please create the network manually "
                f"using `dockyard network create {name}` and try again."
            )
        ipam = entry.get("ipam") or {}
        config = (ipam.get("config") or [{}])[0] if isinstance(ipam, dict) else {}
        labels = {names.PROJECT: project.name, names.NETWORK: key}
        labels.update({str(k): str(v) for k, v in mapping(entry, "labels").items()})
        _say(f'Creating network "{name}" with driver "bridge"')
        try:
            create_network(
                name,
                subnet=config.get("subnet"),
                gateway=config.get("gateway"),
                internal=bool(entry.get("internal")),
                labels=labels,
                root=_root(),
            )
        except NetworkError as exc:
            raise ComposeError(str(exc)) from None


def _project_volumes(project: Project) -> dict[str, dict[str, object]]:
    return {names.volume_name(project.name, key, entry): entry for key, entry in project.section("volumes").items()}


def _ensure_volumes(project: Project) -> None:
    from runtime.volumes import VolumeStore

    store = VolumeStore(_root())
    for name, entry in _project_volumes(project).items():
        if store.exists(name):
            continue
        if entry.get("external"):
            raise ComposeError(
                f"Volume {name} declared as external, but could not be found. Please create the volume manually "
                f"using `dockyard volume create --name={name}` and try again."
            )
        _say(f'Creating volume "{name}" with default driver')
        store.create(name)


def _create(project: Project, service: str) -> Container:
    from runtime.commands.create import create_container
    from runtime.networks import NetworkError, connect

    try:
        args = run_arguments(project, service)
        created = create_container(args)
    except (ValueError, ContainerError) as exc:
        raise ComposeError(f"Cannot create container for service {service}: {exc}") from None
    if created is None:
        raise ComposeError(f"Cannot create container for service {service}")
    container = created[1]
    networks = list(service_networks(project, service).items())
    for name, options in networks[1:]:
        aliases = [service, *[str(a) for a in items(options, "aliases")]]
        try:
            connect(container, name, aliases=aliases, ip=_optional_str(options.get("ipv4_address")), root=_root())
        except NetworkError as exc:
            raise ComposeError(str(exc)) from None
    return container


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _start(container: Container) -> None:
    from runtime import container as lifecycle

    outcome, sock = lifecycle.start(ContainerStore(_root()), container)
    sock.close()
    if not outcome.started:
        raise ComposeError(f"Cannot start container {container.name}: {outcome.error}")


def _grace(project: Project, service: str, timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    return parse_duration(project.services()[service].get("stop_grace_period"), 10.0)


def _stop_one(project: Project, container: Container, timeout: float | None) -> None:
    from runtime import container as lifecycle

    service = container.spec.labels.get(names.SERVICE, "")
    grace = _grace(project, service, timeout) if service in project.services() else 10.0
    lifecycle.stop(container, grace)


def _wait_for(project: Project, service: str) -> None:
    """Until the conditions of the service's depends_on hold."""
    depends = project.services()[service].get("depends_on") or {}
    assert isinstance(depends, dict)
    for dep, options in depends.items():
        condition = (options or {}).get("condition", "service_started")
        container = _of_service(project, dep)
        if container is None or condition == "service_started":
            continue
        if condition == "service_healthy":
            check = project.services()[dep].get("healthcheck")
            if not isinstance(check, dict):
                raise ComposeError(
                    f"dependency failed to start: container for service {dep} has no healthcheck configured"
                )
            try:
                wait_healthy(container, check)
            except HealthError as exc:
                raise ComposeError(f"dependency failed to start: {exc}") from None
        elif condition == "service_completed_successfully":
            code = wait_exit(container)
            if code != 0:
                raise ComposeError(f"service {dep!r} didn't complete successfully: exit {code}")


def wait_exit(container: Container, settle: float = 10.0) -> int:
    """The container's exit code once it has stopped and its supervisor has recorded it (between
    the process's end and that record, the runtime reports 255)."""
    while container.state().status in ("running", "restarting"):
        time.sleep(0.05)
    deadline = time.monotonic() + settle
    while not container.state().finished and time.monotonic() < deadline:
        time.sleep(0.02)
    return container.state().exit_code


def _has_image(image: str) -> bool:
    from runtime.images import ImageStore

    return ImageStore(_root()).resolve(image) is not None


def up(project: Project, services: list[str] | None = None, *, build_first: bool = False) -> list[Container]:
    """Create what is missing, recreate what changed, start what is stopped; the containers."""
    order = project.order(services)
    _ensure_networks(project)
    _ensure_volumes(project)
    to_build = [
        s
        for s in order
        if "build" in project.services()[s] and (build_first or not _has_image(service_image(project, s)))
    ]
    if to_build:
        build(project, to_build)
    result: list[Container] = []
    for service in order:
        _wait_for(project, service)
        existing = _of_service(project, service)
        if existing is not None and existing.spec.labels.get(names.CONFIG_HASH) == config_hash(project, service):
            if existing.state().status in ("running", "restarting"):
                _say(f"{existing.name} is up-to-date")
            else:
                _say(f"Starting {existing.name} ... ")
                _start(existing)
                _say(f"Starting {existing.name} ... done")
            result.append(existing)
            continue
        verb = "Creating"
        if existing is not None:
            verb = "Recreating"
            _remove(project, existing, None, volumes=False)
        name = str(project.services()[service].get("container_name") or names.container_name(project.name, service))
        _say(f"{verb} {name} ... ")
        container = _create(project, service)
        _start(container)
        _say(f"{verb} {name} ... done")
        result.append(container)
    return result


def _remove(project: Project, container: Container, timeout: float | None, volumes: bool) -> None:
    from runtime import container as lifecycle

    with contextlib.suppress(ContainerError):
        _stop_one(project, container, timeout)
    lifecycle.remove(ContainerStore(_root()), container, force=True, volumes=volumes)


def stop(project: Project, services: list[str] | None = None, timeout: float | None = None) -> None:
    for container in reversed(containers(project, services)):
        if container.state().status in ("running", "restarting"):
            _say(f"Stopping {container.name} ... ")
            _stop_one(project, container, timeout)
            _say(f"Stopping {container.name} ... done")


def start(project: Project, services: list[str] | None = None) -> None:
    found = containers(project, services)
    if not found:
        raise ComposeError("No containers to start")
    for container in found:
        if container.state().status not in ("running", "restarting"):
            service = container.spec.labels.get(names.SERVICE, "")
            if service in project.services():
                _wait_for(project, service)
            _say(f"Starting {container.name} ... ")
            _start(container)
            _say(f"Starting {container.name} ... done")


def restart(project: Project, services: list[str] | None = None, timeout: float | None = None) -> None:
    for container in containers(project, services):
        _say(f"Restarting {container.name} ... ")
        if container.state().status in ("running", "restarting"):
            _stop_one(project, container, timeout)
        _start(container)
        _say(f"Restarting {container.name} ... done")


def down(project: Project, *, volumes: bool = False, timeout: float | None = None) -> None:
    """Stop and remove the project's containers and networks; with `volumes`, its named volumes
    and the containers' anonymous ones."""
    from runtime.networks import NetworkError, list_networks, remove_network
    from runtime.volumes import VolumeError, VolumeStore

    for container in reversed(containers(project)):
        if container.state().status in ("running", "restarting"):
            _say(f"Stopping {container.name} ... ")
            _stop_one(project, container, timeout)
            _say(f"Stopping {container.name} ... done")
    for container in reversed(containers(project)):
        _say(f"Removing {container.name} ... ")
        _remove(project, container, timeout, volumes)
        _say(f"Removing {container.name} ... done")
    wanted = {n for n, (_, entry) in project_networks(project).items() if not entry.get("external")}
    for network in list_networks(root=_root()):
        if network.labels.get(names.PROJECT) == project.name or (network.name in wanted and not network.builtin):
            _say(f"Removing network {network.name}")
            try:
                remove_network(network.name, root=_root())
            except NetworkError as exc:
                _say(f"ERROR: {exc}")
    if volumes:
        store = VolumeStore(_root())
        in_use = {m.volume for c in ContainerStore(_root()).list() for m in c.spec.mounts if m.kind == "volume"}
        for name, entry in _project_volumes(project).items():
            if entry.get("external") or not store.exists(name):
                continue
            _say(f"Removing volume {name}")
            try:
                store.remove(name, in_use)
            except VolumeError as exc:
                _say(f"ERROR: {exc}")


def build(project: Project, services: list[str] | None = None, *, no_cache: bool = False, pull: bool = False) -> None:
    """Each service with `build:`, through the runtime's builder, tagged as its image."""
    from runtime.build.builder import Builder, BuildError, BuildOptions
    from runtime.images import ImageError, ImageStore

    for service in services or project.order():
        config = project.services()[service].get("build")
        if not isinstance(config, dict):
            if services:
                _say(f"{service} uses an image, skipping")
            continue
        context = Path(str(config["context"]))
        dockerfile = context / str(config.get("dockerfile") or "Dockerfile")
        if not dockerfile.is_file():
            raise ComposeError(f"Cannot locate specified Dockerfile: {dockerfile}")
        image = service_image(project, service)
        _say(f"Building {service}")
        raw = config.get("args") or {}
        if isinstance(raw, list):
            raw = dict(str(a).partition("=")[::2] for a in raw)
        args = {str(k): str(v) for k, v in raw.items() if v is not None}
        options = BuildOptions(
            dockerfile=dockerfile.read_text(),
            context=context,
            dockerfile_path=dockerfile,
            tags=(image,),
            build_args=args,
            target=config.get("target"),
            no_cache=no_cache,
            pull=pull,
            labels={names.PROJECT: project.name, names.SERVICE: service},
        )
        try:
            result = Builder(ImageStore(_root()), options).build()
        except (BuildError, ImageError) as exc:
            raise ComposeError(f"Service '{service}' failed to build: {exc}") from None
        _say(f"Successfully built {result.image_id.partition(':')[2][:12]}")
        _say(f"Successfully tagged {image}")


def pull(project: Project, services: list[str] | None = None) -> None:
    """Each service's `image:` (those that only build are skipped), through the runtime's puller."""
    import asyncio

    from runtime.images import ImageError, ImageStore
    from runtime.pull import pull_image

    for service in services or project.order():
        config = project.services()[service]
        if "image" not in config:
            continue
        _say(f"Pulling {service} ({config['image']})...")
        try:
            asyncio.run(pull_image(ImageStore(_root()), str(config["image"]), out=sys.stderr))
        except ImageError as exc:
            if "build" in config:
                continue
            raise ComposeError(f"Service '{service}' failed to pull: {exc}") from None
