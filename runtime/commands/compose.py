"""`dockyard compose [-f FILE]... [-p PROJECT] config`: the Compose file loaded, validated and printed."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compose = subparsers.add_parser("compose", help="Define and run multi-container applications")
    compose.add_argument("-f", "--file", action="append", default=[], dest="files")
    compose.add_argument("-p", "--project-name", dest="project")
    sub = compose.add_subparsers(dest="compose_command", metavar="COMMAND", required=True)
    config = sub.add_parser("config", help="Validate and view the Compose file")
    config.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from runtime.compose.project import load_project
    from runtime.compose.validate import ComposeError

    try:
        project = load_project(args.files, args.project)
    except ComposeError as exc:
        print(f"ERROR: The Compose file is invalid because:\n{exc}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump(project.config, default_flow_style=False, sort_keys=True))
    return 0
