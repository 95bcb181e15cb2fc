"""Container commands: run, ps, stop, start, rm, container prune, logs, exec, inspect, attach."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    return None
