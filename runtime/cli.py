"""The runtime's subcommands (pull, run, ps, ...), mounted by the `dockyard` command."""

from __future__ import annotations

import argparse

from runtime.commands import build, compose, containers, groups, images, network, push


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    images.register(subparsers)
    containers.register(subparsers)
    build.register(subparsers)
    push.register(subparsers)
    # After every command the groups repeat (`image build`, `image push`, ...).
    groups.register(subparsers, containers.needs_root)
    network.register(subparsers, containers.needs_root)
    compose.register(subparsers)
