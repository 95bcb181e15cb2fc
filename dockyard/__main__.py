"""Entry point of the `dockyard` command. The only module that imports both the registry and the
runtime: each side registers its own subcommands; every command returns its exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    # Imported here, not at the top: the server's worker processes re-import this module
    # (multiprocessing's spawn), and should not load the runtime's commands to serve requests.
    from registry import cli as registry_cli
    from runtime import cli as runtime_cli

    parser = argparse.ArgumentParser(prog="dockyard", description="Private container registry and runtime.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    registry_cli.register(subparsers)
    runtime_cli.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    code: int = func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
