"""`info`, `version` and `system df`: what the runtime is and what it holds, in Docker's words
and with `--format`."""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

from runtime.containers import ContainerStore
from runtime.images import ImageStore, default_root
from runtime.volumes import VolumeStore

__all__ = ["cmd_df", "cmd_info", "cmd_version", "directory_size", "human_size", "info_data", "version_data"]

API_VERSION = "1.41"  # the Engine API level whose field names these commands print
DF_FORMAT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dockyard")
    except PackageNotFoundError:
        return "0.0.0"


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def _print_formatted(fmt: str, data: dict[str, Any]) -> int:
    from runtime.gotemplate import Template, TemplateError

    try:
        print(Template(fmt.replace("\\t", "\t").replace("\\n", "\n"), missing_key="error").execute(data))
    except TemplateError as exc:
        print(f"template: {exc}", file=sys.stderr)
        return 1
    return 0


def version_data() -> dict[str, Any]:
    common = {"Version": _version(), "ApiVersion": API_VERSION, "Os": "linux", "Arch": _arch(),
              "PythonVersion": platform.python_version(), "KernelVersion": platform.release()}  # fmt: skip
    return {
        "Client": {**common, "Platform": {"Name": "Dockyard"}},
        "Server": {**common, "Platform": {"Name": "Dockyard runtime"}},
    }


def cmd_version(args: argparse.Namespace) -> int:
    data = version_data()
    if args.format:
        return _print_formatted(args.format, data)
    for side, title in (("Client", "Client: Dockyard"), ("Server", "Server: Dockyard runtime")):
        d = data[side]
        print(title)
        print(f" Version:           {d['Version']}")
        print(f" API version:       {d['ApiVersion']}")
        print(f" Python version:    {d['PythonVersion']}")
        print(f" OS/Arch:           {d['Os']}/{d['Arch']}")
        if side == "Client":
            print()
    return 0


def _cgroup_version() -> str:
    from runtime import cgroups

    try:
        kind, _ = cgroups.detect()
    except OSError:
        return ""
    return "2" if kind == "v2" else "1"


def _memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip('"')
    except OSError:
        pass
    return platform.system()


def info_data() -> dict[str, Any]:
    root = default_root()
    states = [c.state().status for c in ContainerStore(root).list()]
    images = {i.id for i in ImageStore(root).list()}
    return {
        "ID": "",
        "Containers": len(states),
        "ContainersRunning": states.count("running"),
        "ContainersPaused": 0,
        "ContainersStopped": len(states) - states.count("running"),
        "Images": len(images),
        "Driver": "overlay2",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": _cgroup_version(),
        "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _memory(),
        "Name": socket.gethostname(),
        "DockerRootDir": str(root),
        "ServerVersion": _version(),
        "SecurityOptions": [],
    }


def cmd_info(args: argparse.Namespace) -> int:
    from runtime.commands.manage import _binary

    data = info_data()
    if args.format:
        return _print_formatted(args.format, data)
    print("Client:")
    print(f" Version:    {_version()}")
    print(" Context:    default")
    print()
    print("Server:")
    print(f" Containers: {data['Containers']}")
    print(f"  Running: {data['ContainersRunning']}")
    print(f"  Paused: {data['ContainersPaused']}")
    print(f"  Stopped: {data['ContainersStopped']}")
    print(f" Images: {data['Images']}")
    print(f" Server Version: {data['ServerVersion']}")
    print(f" Storage Driver: {data['Driver']}")
    print(f" Cgroup Driver: {data['CgroupDriver']}")
    print(f" Cgroup Version: {data['CgroupVersion']}")
    print(f" Kernel Version: {data['KernelVersion']}")
    print(f" Operating System: {data['OperatingSystem']}")
    print(f" OSType: {data['OSType']}")
    print(f" Architecture: {data['Architecture']}")
    print(f" CPUs: {data['NCPU']}")
    print(f" Total Memory: {_binary(data['MemTotal'])}")
    print(f" Name: {data['Name']}")
    print(f" Docker Root Dir: {data['DockerRootDir']}")
    return 0


def directory_size(path: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue
    return total


def human_size(size: int, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: `%.<precision>g` of decimal units (HumanSize is 4)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:.{precision}g}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _reclaimable(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


def df_rows(root: Path) -> list[dict[str, str]]:
    images_store = ImageStore(root)
    containers = ContainerStore(root).list()
    volumes = VolumeStore(root)
    used_images = {c.spec.image_id for c in containers}
    images: dict[str, set[str]] = {}
    for image in images_store.list():
        images[image.id] = set(image.config.get("rootfs", {}).get("diff_ids", []))
    all_layers = set().union(*images.values()) if images else set()
    active_layers = set().union(*(v for k, v in images.items() if k in used_images)) if images else set()
    layer_size = {d: images_store.layer_size(d) for d in all_layers}
    image_total = sum(layer_size.values())
    image_free = sum(s for d, s in layer_size.items() if d not in active_layers)
    container_sizes = {c.id: directory_size(c.dir / "upper") for c in containers}
    stopped = [c for c in containers if c.state().status != "running"]
    in_use = {m.volume for c in containers for m in c.spec.mounts if m.kind == "volume"}
    volume_sizes = {name: directory_size(volumes.data_dir(name)) for name in volumes.list()}
    container_total = sum(container_sizes.values())
    volume_total = sum(volume_sizes.values())
    return [
        {"Type": "Images", "TotalCount": str(len(images)), "Active": str(len(used_images & set(images))),
         "Size": human_size(image_total), "Reclaimable": _reclaimable(image_free, image_total)},
        {"Type": "Containers", "TotalCount": str(len(containers)),
         "Active": str(len(containers) - len(stopped)), "Size": human_size(container_total),
         "Reclaimable": _reclaimable(sum(container_sizes[c.id] for c in stopped), container_total)},
        {"Type": "Local Volumes", "TotalCount": str(len(volume_sizes)),
         "Active": str(len(in_use & set(volume_sizes))), "Size": human_size(volume_total),
         "Reclaimable": _reclaimable(sum(s for n, s in volume_sizes.items() if n not in in_use), volume_total)},
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
    ]  # fmt: skip


def cmd_df(args: argparse.Namespace) -> int:
    from runtime.listformat import TemplateError, render_rows

    try:
        sys.stdout.write(render_rows(args.format or DF_FORMAT, df_rows(default_root()), DF_HEADERS))
    except TemplateError as exc:
        print(f"template parsing error: {exc}", file=sys.stderr)
        return 1
    return 0
