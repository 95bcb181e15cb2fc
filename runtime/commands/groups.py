"""The everyday commands beyond run/ps/logs (create, restart, wait, top, stats, cp, port, rename,
diff, export, save, load, tag, info, version, system df), and the `container`, `image` and
`volume` groups with every verb Docker gives them. Each handler is imported when it runs."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]
if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _lazy(module: str, name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        func: Handler = getattr(importlib.import_module(module), name)
        try:
            return func(args)
        except BrokenPipeError:
            # The reader went away (`dockyard export c | head`): end quietly, as a Go program
            # killed by SIGPIPE does, and keep the interpreter from flushing into the pipe again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141

    return handler


def _verbs(subparsers: Subparsers, group: str) -> Subparsers:
    parser = subparsers.choices[group]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError(group)


def _containers(subparsers: Subparsers, wrap: Callable[[Handler], Handler]) -> None:
    from runtime.commands.run import add_run_arguments

    create = subparsers.add_parser("create", help="Create a new container", add_help=False)
    create.add_argument("--help", action="help")
    add_run_arguments(create)
    create.set_defaults(func=wrap(_lazy("runtime.commands.create", "cmd_create")))

    restart = subparsers.add_parser("restart", help="Restart one or more containers")
    restart.add_argument("-t", "--time", type=float, default=10.0)
    restart.add_argument("containers", nargs="+")
    restart.set_defaults(func=wrap(_lazy("runtime.commands.manage", "cmd_restart")))

    wait = subparsers.add_parser("wait", help="Block until containers stop, then print their exit codes")
    wait.add_argument("containers", nargs="+")
    wait.set_defaults(func=wrap(_lazy("runtime.commands.manage", "cmd_wait")))

    top = subparsers.add_parser("top", help="Display the running processes of a container")
    top.add_argument("container")
    top.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS OPTIONS")
    top.set_defaults(func=wrap(_lazy("runtime.commands.manage", "cmd_top")))

    stats = subparsers.add_parser("stats", help="Display resource usage of containers (one reading)")
    stats.add_argument("-a", "--all", action="store_true")
    stats.add_argument("--no-stream", action="store_true", help="the only mode: one reading, then exit")
    stats.add_argument("--no-trunc", action="store_true")
    stats.add_argument("--format", default="")
    stats.add_argument("containers", nargs="*")
    stats.set_defaults(func=wrap(_lazy("runtime.commands.manage", "cmd_stats")))

    cp = subparsers.add_parser("cp", help="Copy files between a container and the host")
    cp.add_argument("-a", "--archive", action="store_true", help="keep the source's owners")
    cp.add_argument("-L", "--follow-link", action="store_true", help="accepted for Docker compatibility")
    cp.add_argument("-q", "--quiet", action="store_true")
    cp.add_argument("source", metavar="SRC")
    cp.add_argument("destination", metavar="DEST")
    cp.set_defaults(func=wrap(_lazy("runtime.commands.files", "cmd_cp")))

    port = subparsers.add_parser("port", help="List a container's published ports")
    port.add_argument("container")
    port.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    port.set_defaults(func=wrap(_lazy("runtime.commands.manage", "cmd_port")))

    rename = subparsers.add_parser("rename", help="Rename a container")
    rename.add_argument("container")
    rename.add_argument("new_name", metavar="NEW_NAME")
    rename.set_defaults(func=wrap(_lazy("runtime.commands.manage", "cmd_rename")))

    diff = subparsers.add_parser("diff", help="Show the files changed in a container's filesystem")
    diff.add_argument("container")
    diff.set_defaults(func=wrap(_lazy("runtime.commands.files", "cmd_diff")))

    export = subparsers.add_parser("export", help="Write a container's filesystem as a tar archive")
    export.add_argument("-o", "--output", default="")
    export.add_argument("container")
    export.set_defaults(func=wrap(_lazy("runtime.commands.files", "cmd_export")))


def _images(subparsers: Subparsers) -> None:
    save = subparsers.add_parser("save", help="Write images to a tar archive (docker save's format)")
    save.add_argument("-o", "--output", default="")
    save.add_argument("images", nargs="+", metavar="IMAGE")
    save.set_defaults(func=_lazy("runtime.commands.archive", "cmd_save"))

    load = subparsers.add_parser("load", help="Load images from a tar archive (docker save's format)")
    load.add_argument("-i", "--input", default="")
    load.add_argument("-q", "--quiet", action="store_true")
    load.set_defaults(func=_lazy("runtime.commands.archive", "cmd_load"))

    tag = subparsers.add_parser("tag", help="Give an image another name")
    tag.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    tag.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    tag.set_defaults(func=_lazy("runtime.commands.archive", "cmd_tag"))


def _system(subparsers: Subparsers) -> None:
    info = subparsers.add_parser("info", help="Display system-wide information")
    info.add_argument("-f", "--format", default="")
    info.set_defaults(func=_lazy("runtime.commands.system", "cmd_info"))

    version = subparsers.add_parser("version", help="Show the Dockyard version")
    version.add_argument("-f", "--format", default="")
    version.set_defaults(func=_lazy("runtime.commands.system", "cmd_version"))

    system = subparsers.add_parser("system", help="Manage the runtime")
    verbs = system.add_subparsers(dest="system_command", metavar="COMMAND", required=True)
    df = verbs.add_parser("df", help="Show disk usage")
    df.add_argument("--format", default="")
    df.add_argument("-v", "--verbose", action="store_true", help="accepted for Docker compatibility")
    df.set_defaults(func=_lazy("runtime.commands.system", "cmd_df"))
    verbs.add_parser("info", parents=[info], add_help=False, help="Display system-wide information")


def _image_inspect(verbs: Subparsers) -> None:
    """`image inspect` takes `-f/--format` as `inspect` does, limited to images."""
    parser = verbs.choices.get("inspect")
    if parser is None:
        return
    parser.add_argument("-f", "--format", default="")
    inspect = _lazy("runtime.commands.inspect", "cmd_inspect")

    def handler(args: argparse.Namespace) -> int:
        args.names, args.type = args.images, "image"
        return inspect(args)

    parser.set_defaults(func=handler)


# The verbs of each group that repeat a top-level command, as Docker has them.
CONTAINER_VERBS = ("attach", "cp", "create", "diff", "exec", "export", "inspect", "kill", "logs", "port", "rename",
                   "restart", "rm", "run", "start", "stats", "stop", "top", "wait")  # fmt: skip
IMAGE_VERBS = ("build", "load", "push", "save", "tag")
VOLUME_VERBS: tuple[str, ...] = ()


def _alias(subparsers: Subparsers, group: str, names: tuple[str, ...]) -> None:
    verbs = _verbs(subparsers, group)
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    for name in names:
        if name in verbs.choices or name not in subparsers.choices:
            continue
        verb = verbs.add_parser(name, parents=[subparsers.choices[name]], add_help=False, help=helps.get(name))
        verb.set_defaults(command=name)  # `container run` fails with run's exit codes


def register(subparsers: Subparsers, wrap: Callable[[Handler], Handler]) -> None:
    _containers(subparsers, wrap)
    _images(subparsers)
    _system(subparsers)
    _alias(subparsers, "container", CONTAINER_VERBS)
    _alias(subparsers, "image", IMAGE_VERBS)
    _alias(subparsers, "volume", VOLUME_VERBS)
    _image_inspect(_verbs(subparsers, "image"))
    volumes = _verbs(subparsers, "volume")
    if "ls" in volumes.choices:
        from runtime.commands.volumelist import add_list_arguments

        ls = volumes.choices["ls"]
        add_list_arguments(ls)
        ls.set_defaults(func=wrap(_lazy("runtime.commands.volumelist", "cmd_volume_ls")))
        if "list" not in volumes.choices:
            volumes.add_parser("list", parents=[ls], add_help=False, help="List volumes")
