"""The command table: every subcommand's name, one line of help, and the module that registers its
parser. `dockyard --help` is printed from this table alone, and a command imports only its own
module, so `dockyard run` never loads the server (Starlette, YAML, the auth stack).

To add a command: register its parser in the module's `register(subparsers)` (registry/cli.py for
the server's commands, runtime/cli.py for the runtime's) and add one line here; the unit test
tests/unit/test_command_table.py fails until the two agree."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["COMMANDS", "Command", "find"]

REGISTRY = "registry.cli"
RUNTIME = "runtime.cli"


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
    Command("pull", RUNTIME, "Download an image from a registry"),
    Command("login", RUNTIME, "Log in to a registry"),
    Command("logout", RUNTIME, "Log out from a registry"),
    Command("images", RUNTIME, "List images"),
    Command("rmi", RUNTIME, "Remove one or more images"),
    Command("history", RUNTIME, "Show the history of an image"),
    Command("image", RUNTIME, "Manage images"),
    Command("run", RUNTIME, "Create and run a new container from an image"),
    Command("ps", RUNTIME, "List containers"),
    Command("stop", RUNTIME, "Stop one or more running containers"),
    Command("start", RUNTIME, "Start one or more stopped containers"),
    Command("kill", RUNTIME, "Kill one or more running containers"),
    Command("rm", RUNTIME, "Remove one or more containers"),
    Command("container", RUNTIME, "Manage containers"),
    Command("logs", RUNTIME, "Fetch the logs of a container"),
    Command("exec", RUNTIME, "Execute a command in a running container"),
    Command("inspect", RUNTIME, "Return low-level information on containers or images"),
    Command("attach", RUNTIME, "Attach to a running container's input and output"),
    Command("volume", RUNTIME, "Manage volumes"),
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
