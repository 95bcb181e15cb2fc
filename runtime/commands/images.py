"""Image commands: pull, login, logout, images, rmi, image prune, history."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    return None
