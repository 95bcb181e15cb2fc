"""What every server subcommand (serve, gc, doctor) shares on the command line: where the config comes
from, loading it with one clear line on error, and logging in the configured format. It imports
nothing that serves, so a subcommand can use it without loading the app."""

from __future__ import annotations

import argparse
import os
import sys

from registry.config import Config, ConfigError, load_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config_file", nargs="?", metavar="CONFIG", help="YAML config file")
    parser.add_argument("--config", dest="config_flag", metavar="FILE", help="YAML config file")


def config_path(args: argparse.Namespace) -> str | None:
    path: str | None = args.config_flag or args.config_file or os.environ.get("DOCKYARD_CONFIG") or None
    return path


def load_or_exit(args: argparse.Namespace, overrides: dict[str, str] | None = None) -> Config | None:
    """Load the config; print one clear line naming the bad key and return None if it is wrong."""
    environ = {**os.environ, **(overrides or {})}
    try:
        return load_config(config_path(args), environ)
    except ConfigError as exc:
        print(f"dockyard: config error: {exc}", file=sys.stderr)
        return None


def setup_logging(config: Config) -> None:
    from registry.logformat import configure_logging

    configure_logging(config)
