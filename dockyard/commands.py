"""The command table: every subcommand's name, one line of help, and the module that registers its
parser. `dockyard --help` is printed from this table alone, and a command imports only its own
module, so `dockyard run` never loads the server (Starlette, YAML, the auth stack), nor the parsers
of the runtime's other commands.

To add a command: register its parser in a module's `register(subparsers)` reached from
registry/cli.py (the server's commands) or runtime/cli.py (the runtime's), and add one line here
naming the smallest module that registers it; tests/unit/test_command_table.py fails until the
table and the parsers agree."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["COMMANDS", "Command", "find"]

REGISTRY = "registry.cli"
RUNTIME = "runtime.cli"  # every runtime command; the groups (container, image, volume) need them all
CONTAINERS = "runtime.commands.containers"  # the everyday container commands, `run` first
IMAGES = "runtime.commands.images"


class Command(NamedTuple):
    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("serve", REGISTRY, "run the registry server"),
    Command("user", REGISTRY, "manage the users of the htpasswd file"),
    Command("tls", REGISTRY, "TLS certificates"),
    Command("gc", REGISTRY, "delete blobs and manifests no tag reaches"),
    Command("doctor", REGISTRY, "check the config and a running registry; print fixes"),
    Command("mirror", REGISTRY, "the pull-through cache"),
    Command("quota", REGISTRY, "show each quota's stored bytes and limit"),
    Command("robot", REGISTRY, "manage robot accounts (tokens for CI)"),
    Command("events", REGISTRY, "follow registry events (webhooks) from the queue"),
    Command("pull", IMAGES, "Download an image from a registry"),
    Command("login", IMAGES, "Log in to a registry"),
    Command("logout", IMAGES, "Log out from a registry"),
    Command("images", IMAGES, "List images"),
    Command("rmi", IMAGES, "Remove one or more images"),
    Command("history", IMAGES, "Show the history of an image"),
    Command("image", RUNTIME, "Manage images"),
    Command("run", CONTAINERS, "Create and run a new container from an image"),
    Command("ps", CONTAINERS, "List containers"),
    Command("stop", CONTAINERS, "Stop one or more running containers"),
    Command("start", CONTAINERS, "Start one or more stopped containers"),
    Command("kill", CONTAINERS, "Kill one or more running containers"),
    Command("rm", CONTAINERS, "Remove one or more containers"),
    Command("container", RUNTIME, "Manage containers"),
    Command("logs", CONTAINERS, "Fetch the logs of a container"),
    Command("exec", CONTAINERS, "Execute a command in a running container"),
    Command("inspect", CONTAINERS, "Return low-level information on containers or images"),
    Command("attach", CONTAINERS, "Attach to a running container's input and output"),
    Command("volume", RUNTIME, "Manage volumes"),
    Command("network", RUNTIME, "Manage networks"),
    Command("compose", "runtime.commands.compose", "Define and run multi-container applications"),
    Command("build", "runtime.commands.build", "Build an image from a Dockerfile"),
    Command("builder", "runtime.commands.build", "Manage the build cache"),
    Command("push", "runtime.commands.push", "Upload an image to a registry"),
    Command("create", RUNTIME, "Create a new container"),
    Command("restart", RUNTIME, "Restart one or more containers"),
    Command("wait", RUNTIME, "Block until containers stop, then print their exit codes"),
    Command("top", RUNTIME, "Display the running processes of a container"),
    Command("stats", RUNTIME, "Display resource usage of containers (one reading)"),
    Command("cp", RUNTIME, "Copy files between a container and the host"),
    Command("port", RUNTIME, "List a container's published ports"),
    Command("rename", RUNTIME, "Rename a container"),
    Command("diff", RUNTIME, "Show the files changed in a container's filesystem"),
    Command("export", RUNTIME, "Write a container's filesystem as a tar archive"),
    Command("save", RUNTIME, "Write images to a tar archive (docker save's format)"),
    Command("load", RUNTIME, "Load images from a tar archive (docker save's format)"),
    Command("tag", RUNTIME, "Give an image another name"),
    Command("info", RUNTIME, "Display system-wide information"),
    Command("version", RUNTIME, "Show the Dockyard version"),
    Command("system", RUNTIME, "Manage the runtime"),
)

_BY_NAME = {command.name: command for command in COMMANDS}


def find(name: str) -> Command | None:
    return _BY_NAME.get(name)
