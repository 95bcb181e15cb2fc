"""Entry point of the `dockyard` command. The only module that imports both the registry and the
runtime, and each only when one of its commands runs (dockyard/commands.py is the table); every
command returns its exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from dockyard.commands import COMMANDS, find

DESCRIPTION = "Private container registry and runtime."


def _parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="dockyard", description=DESCRIPTION)
    return parser, parser.add_subparsers(dest="command", metavar="COMMAND")


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the real subcommands of `modules` (default: all of them). The server's worker
    processes re-import this module (multiprocessing's spawn), so nothing is imported at the top."""
    parser, subparsers = _parser()
    wanted = modules if modules is not None else dict.fromkeys(command.module for command in COMMANDS)
    for module in wanted:
        importlib.import_module(module).register(subparsers)
    return parser


def _listing() -> argparse.ArgumentParser:
    """Every command by name and help, from the table: enough for `--help` and for argparse's
    "invalid choice" error, with no command module imported."""
    parser, subparsers = _parser()
    for command in COMMANDS:
        subparsers.add_parser(command.name, help=command.help)
    return parser


def _command_name(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
        if arg in ("-h", "--help"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    name = _command_name(args_list)
    command = find(name) if name is not None else None
    parser = build_parser([command.module]) if command is not None else _listing()
    args = parser.parse_args(args_list)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    code: int = func(args)
    return code


def entry() -> NoReturn:
    """The installed command and `python -m dockyard`: `main`, then the exit. After a runtime command
    with no thread left to finish, the interpreter's teardown (freeing every module, ~15 ms of a
    `run --rm` here) has nothing to do: output is flushed and the process leaves at once. The
    server's commands exit normally, for their atexit work (the metrics directory)."""
    argv = sys.argv[1:]
    code = main(argv)
    name = _command_name(argv)
    command = find(name) if name is not None else None
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if command is None or not command.module.startswith("runtime.") or others:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
