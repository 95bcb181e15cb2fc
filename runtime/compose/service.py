"""One Compose service as the runtime's `run` arguments: the same parser and the same
create_container() that `dockyard run` uses, so a service gets exactly what the flags give."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex

from runtime.compose import names
from runtime.compose.project import Project
from runtime.compose.values import items, mapping

__all__ = ["config_hash", "first_network", "run_arguments", "service_image", "service_networks"]


def service_image(project: Project, service: str) -> str:
    config = project.services()[service]
    return str(config.get("image") or names.image_name(project.name, service))


def service_networks(project: Project, service: str) -> dict[str, dict[str, object]]:
    """The project networks (runtime names) the service joins, in order, with their options."""
    config = project.services()[service]
    wanted = config.get("networks") or {"default": None}
    assert isinstance(wanted, dict)
    declared = project.section("networks")
    result: dict[str, dict[str, object]] = {}
    for key in sorted(wanted):
        runtime_name = names.network_name(project.name, key, declared.get(key, {}))
        result[runtime_name] = dict(wanted[key] or {})
    return result


def first_network(project: Project, service: str) -> str:
    return next(iter(service_networks(project, service)))


def config_hash(project: Project, service: str) -> str:
    """What decides whether `up` recreates a service's container."""
    text = json.dumps(project.services()[service], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _split(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return shlex.split(str(value))


def run_arguments(project: Project, service: str) -> argparse.Namespace:
    """`run -d` arguments for the service's container, parsed by the runtime's own parser."""
    from runtime.commands.run import add_run_arguments

    config = project.services()[service]
    argv = ["--name", str(config.get("container_name") or names.container_name(project.name, service))]
    labels = {
        names.PROJECT: project.name,
        names.SERVICE: service,
        names.NUMBER: "1",
        names.CONFIG_HASH: config_hash(project, service),
        "com.docker.compose.oneoff": "False",
        **{str(k): str(v) for k, v in mapping(config, "labels").items()},
    }
    argv += [f"--label={k}={v}" for k, v in labels.items()]
    for key, value in mapping(config, "environment").items():
        if value is None:
            if key in os.environ:
                argv.append(f"--env={key}={os.environ[key]}")
        else:
            argv.append(f"--env={key}={value}")
    for port in items(config, "ports"):
        if not isinstance(port, dict):
            argv.append(f"--publish={port}")
            continue
        text = str(port["target"])
        if "published" in port:
            text = f"{port['published']}:{text}"
            if "host_ip" in port:
                text = f"{port['host_ip']}:{text}"
        if port.get("protocol"):
            text += f"/{port['protocol']}"
        argv.append(f"--publish={text}")
    declared_volumes = project.section("volumes")
    for mount in items(config, "volumes"):
        parts = str(mount).split(":")
        if len(parts) > 1 and not parts[0].startswith("/"):
            parts[0] = names.volume_name(project.name, parts[0], declared_volumes.get(parts[0], {}))
        argv.append(f"--volume={':'.join(parts)}")
    networks = service_networks(project, service)
    first, options = next(iter(networks.items()))
    argv.append(f"--network={first}")
    for alias in [service, *[str(a) for a in items(options, "aliases")]]:
        argv.append(f"--network-alias={alias}")
    if options.get("ipv4_address"):
        argv.append(f"--ip={options['ipv4_address']}")
    for link in items(config, "links"):
        target, _, alias = str(link).partition(":")
        argv.append(f"--link={names.container_name(project.name, target)}:{alias or target}")
    simple = {
        "restart": "--restart",
        "hostname": "--hostname",
        "working_dir": "--workdir",
        "user": "--user",
    }
    for key, flag in simple.items():
        if key in config:
            argv.append(f"{flag}={config[key]}")
    repeated = {"dns": "--dns", "dns_search": "--dns-search", "tmpfs": "--tmpfs", "expose": "--expose"}
    for key, flag in repeated.items():
        argv += [f"{flag}={value}" for value in items(config, key)]
    hosts = config.get("extra_hosts")
    if isinstance(hosts, dict):
        argv += [f"--add-host={host}:{address}" for host, address in hosts.items()]
    else:
        argv += [f"--add-host={entry}" for entry in items(config, "extra_hosts")]
    argv += [f"--cap-add={c}" for c in items(config, "cap_add")]
    argv += [f"--cap-drop={c}" for c in items(config, "cap_drop")]
    for key, flag in {"init": "--init", "read_only": "--read-only", "privileged": "--privileged"}.items():
        if config.get(key):
            argv.append(flag)
    command = _split(config["command"]) if "command" in config else []
    if "entrypoint" in config:
        entrypoint = _split(config["entrypoint"])
        argv.append(f"--entrypoint={entrypoint[0] if entrypoint else ''}")
        command = entrypoint[1:] + command
    argv += ["-d", service_image(project, service), *command]
    parser = argparse.ArgumentParser(prog="dockyard compose", add_help=False)
    add_run_arguments(parser)
    return parser.parse_args(argv)
