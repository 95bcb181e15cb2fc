"""`dockyard inspect [-f FORMAT] [--type container|image] NAME...`: Docker's JSON for containers
(the keys, shapes and order of the Engine API's ContainerJSON that scripts read) and images."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from runtime.containers import Container, ContainerError, ContainerStore
from runtime.ports import PublishedPort
from runtime.spec import Mount

__all__ = ["add_inspect_arguments", "cmd_inspect", "inspect_container", "print_inspected"]


def add_inspect_arguments(p: argparse.ArgumentParser, kinds: bool = True) -> None:
    p.add_argument("-f", "--format", default="")
    p.add_argument("-s", "--size", action="store_true", help="accepted for Docker compatibility")
    if kinds:
        p.add_argument("--type", choices=("container", "image", "volume"), default="")
    p.add_argument("names", nargs="+", metavar="NAME")


def _mount(m: Mount) -> dict[str, Any]:
    if m.kind == "volume":
        return {
            "Type": "volume",
            "Name": m.volume,
            "Source": m.source,
            "Destination": m.target,
            "Driver": "local",
            "Mode": "z",
            "RW": not m.readonly,
            "Propagation": "",
        }
    return {
        "Type": "bind",
        "Source": m.source,
        "Destination": m.target,
        "Mode": "ro" if m.readonly else "",
        "RW": not m.readonly,
        "Propagation": "rprivate",
    }


def _port_bindings(c: Container) -> dict[str, list[dict[str, str]]]:
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in c.spec.ports:
        bindings.setdefault(f"{p.container_port}/{p.protocol}", []).append(
            {"HostIp": p.host_ip, "HostPort": str(p.host_port) if p.host_port else ""}
        )
    return bindings


def network_ports(c: Container) -> dict[str, list[dict[str, str]] | None]:
    """NetworkSettings.Ports: while running, every exposed port, with its host bindings or null."""
    state = c.state()
    if state.status != "running":
        return {}
    ports: dict[str, list[dict[str, str]] | None] = dict.fromkeys(c.spec.exposed_ports)
    for item in state.ports:
        p = PublishedPort.from_dict(item)
        binding = {"HostIp": p.ip, "HostPort": str(p.public_port)}
        ports.setdefault(f"{p.private_port}/{p.protocol}", None)
        ports[f"{p.private_port}/{p.protocol}"] = [*(ports[f"{p.private_port}/{p.protocol}"] or []), binding]
    return ports


def _security_opt(c: Container) -> list[str]:
    """HostConfig.SecurityOpt as Docker records --security-opt (a profile file by its content)."""
    security = c.spec.security
    # The engine adds label=disable to a privileged container's options.
    options = ["label=disable"] if security.privileged else []
    if security.no_new_privileges:
        options.append("no-new-privileges")
    if security.seccomp != "default":
        options.append(f"seccomp={security.seccomp}")
    return options


def inspect_container(c: Container) -> dict[str, Any]:
    """Maps (labels, ports) have their keys sorted, as Go's encoding/json writes a map."""
    from runtime.gotemplate import GoMap, GoStruct

    state, spec = c.state(), c.spec
    network_mode = spec.network_name or ("bridge" if spec.network == "private" else spec.network)
    resources = spec.resources
    result: dict[str, Any] = {
        "Id": c.id,
        "Created": state.created,
        "Path": spec.process.args[0],
        "Args": list(spec.process.args[1:]),
        "State": {
            "Status": state.status,
            "Running": state.status == "running",
            "Paused": False,
            "Restarting": state.status == "restarting",
            "OOMKilled": state.oom_killed,
            "Dead": False,
            "Pid": state.pid if state.status == "running" else 0,
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": state.started or "0001-01-01T00:00:00Z",
            "FinishedAt": state.finished or "0001-01-01T00:00:00Z",
        },
        "Image": spec.image_id,
        "ResolvConfPath": str(c.dir / "resolv.conf"),
        "HostnamePath": str(c.dir / "hostname"),
        "HostsPath": str(c.dir / "hosts"),
        "LogPath": str(c.log_path),
        "Name": "/" + spec.name,
        "RestartCount": state.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {
            "Binds": [f"{m.volume or m.source}:{m.target}{':ro' if m.readonly else ''}" for m in spec.mounts] or None,
            "NetworkMode": network_mode,
            "PortBindings": GoMap(sorted(_port_bindings(c).items())),
            "RestartPolicy": {"Name": spec.restart.name, "MaximumRetryCount": spec.restart.max_retries},
            "AutoRemove": spec.auto_remove,
            "PublishAllPorts": any(p.host_port == 0 for p in spec.ports),
            "Privileged": spec.security.privileged,
            "ReadonlyRootfs": spec.readonly_rootfs,
            "CapAdd": list(spec.security.cap_add) or None,
            "CapDrop": list(spec.security.cap_drop) or None,
            "SecurityOpt": _security_opt(c) or None,
            "ExtraHosts": list(spec.extra_hosts) or None,
            "Dns": list(spec.dns),
            "DnsOptions": list(spec.dns_options),
            "DnsSearch": list(spec.dns_search),
            **({"Tmpfs": GoMap(sorted((t.target, t.options) for t in spec.tmpfs))} if spec.tmpfs else {}),
            "Ulimits": [{"Name": r.name, "Hard": r.hard, "Soft": r.soft} for r in spec.process.rlimits],
            "Memory": resources.memory or 0,
            "MemorySwap": 2 * resources.memory if resources.memory else 0,
            "NanoCpus": (resources.cpu_quota or 0) * 1_000_000_000 // resources.cpu_period,
            "CpuPeriod": 0,
            "CpuQuota": 0,
            "PidsLimit": resources.pids,
            **({"Init": True} if spec.init else {}),  # Docker omits it unless set
        },
        "GraphDriver": {
            "Name": "overlay2",
            "Data": GoMap(
                LowerDir=":".join(reversed(spec.layers)),
                MergedDir=str(c.dir / "rootfs"),
                UpperDir=str(c.dir / "upper"),
                WorkDir=str(c.dir / "work"),
            ),
        },
        "Mounts": [_mount(m) for m in spec.mounts],
        "Config": {
            "Hostname": spec.hostname,
            "Domainname": "",
            "User": spec.user,
            "AttachStdin": spec.process.stdin,
            "AttachStdout": True,
            "AttachStderr": True,
            **({"ExposedPorts": GoMap((k, {}) for k in sorted(spec.exposed_ports))} if spec.exposed_ports else {}),
            "Tty": spec.process.terminal,
            "OpenStdin": spec.process.stdin,
            "StdinOnce": False,
            "Env": list(spec.process.env),
            "Cmd": None if spec.cmd is None else list(spec.cmd),
            "Image": spec.image,
            "Volumes": None,
            "WorkingDir": spec.process.cwd if spec.process.cwd != "/" else "",
            "Entrypoint": None if spec.entrypoint is None else list(spec.entrypoint),
            "OnBuild": None,
            "Labels": GoMap(sorted(spec.labels.items())),
            **({"StopSignal": spec.stop_signal} if spec.stop_signal != "SIGTERM" else {}),
        },
        "NetworkSettings": {
            "Ports": GoMap(sorted(network_ports(c).items())),
            "SandboxKey": f"/proc/{state.pid}/ns/net" if state.status == "running" else "",
            "Networks": GoMap(_networks(c, network_mode)),
        },
        "Cgroup": state.cgroup,
    }
    # Fields the engine writes with omitempty: left out of the JSON, null in a template.
    result["HostConfig"] = GoStruct(result["HostConfig"], {"Tmpfs": None, "Init": None})
    return result


def print_inspected(results: list[dict[str, Any]], fmt: str) -> int:
    """The JSON array, or each object through `fmt`: Docker's two inspect outputs."""
    from runtime.gotemplate import Template, TemplateError

    if not fmt:
        print(json.dumps(results, indent=4, ensure_ascii=False))
        return 0
    try:
        template = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"), missing_key="error")
    except TemplateError as exc:
        # Docker's CLI exits 64 (EX_USAGE) for a template that does not parse.
        print(f"template parsing error: template: :1: {exc}", file=sys.stderr)
        return 64
    code = 0
    for item in results:
        try:
            print(template.execute(item))
        except TemplateError as exc:
            print(f"template parsing error: {exc}", file=sys.stderr)
            code = 1
    return code


def cmd_inspect(args: argparse.Namespace) -> int:
    from runtime.images import ImageError, ImageStore, default_root
    from runtime.volumes import VolumeError, VolumeStore

    root = default_root()
    store = ContainerStore(root)
    results: list[dict[str, Any]] = []
    code = 0
    kind = getattr(args, "type", "")
    for name in args.names:
        if kind in ("", "container"):
            try:
                results.append(inspect_container(store.get(name)))
                continue
            except ContainerError:
                pass
        if kind in ("", "image"):
            try:
                results.append(_image_maps(ImageStore(root).inspect(name)))
                continue
            except (ImageError, KeyError, ValueError):
                pass
        if kind in ("", "volume"):
            volumes = VolumeStore(root)
            try:
                if volumes.exists(name):
                    results.append(volume_json(volumes, name))
                    continue
            except VolumeError:
                pass
        print(f"Error: No such {kind or 'object'}: {name}", file=sys.stderr)
        code = 1
    return print_inspected(results, args.format) or code


def _image_maps(data: dict[str, Any]) -> dict[str, Any]:
    from runtime.gotemplate import GoMap

    config = data.get("Config")
    if isinstance(config, dict):
        for key in ("Labels", "ExposedPorts", "Volumes"):
            if isinstance(config.get(key), dict):
                config[key] = GoMap(config[key])
    return data


def volume_json(volumes: Any, name: str) -> dict[str, Any]:
    return {
        "CreatedAt": "",
        "Driver": "local",
        "Labels": None,
        "Mountpoint": str(volumes.data_dir(name)),
        "Name": name,
        "Options": None,
        "Scope": "local",
    }


def _networks(c: Container, network_mode: str) -> dict[str, Any]:
    """NetworkSettings.Networks: each user network the container is connected to, with its
    address and aliases; the built-in mode when it is on none."""
    from runtime.networks.store import NetworkStore

    joined = {}
    for net in NetworkStore(c.dir.parent.parent).list():
        e = net.endpoints.get(c.id)
        if e is not None:
            prefix = int(net.subnet.rpartition("/")[2]) if net.subnet else 0
            joined[net.name] = {
                "Aliases": [*e.aliases, c.id[:12]] or None,
                "NetworkID": net.id,
                "Gateway": net.gateway if e.active else "",
                "IPAddress": e.ip if e.active else "",
                "IPPrefixLen": prefix if e.active else 0,
                "Links": list(c.spec.links) or None,
            }
    return dict(sorted(joined.items())) or {network_mode: {}}
