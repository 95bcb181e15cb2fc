"""The server's subcommands: serve, gc, user, tls, doctor."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    return None
