"""The runtime's subcommands (pull, run, ps, ...), mounted by the `dockyard` command."""

from __future__ import annotations

import argparse

from runtime.commands import containers, images


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    images.register(subparsers)
    containers.register(subparsers)
