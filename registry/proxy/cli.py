"""`dockyard mirror ...`: the pull-through cache's commands. Only the parser is built here; the
cache itself (and its HTTP client) loads when a command runs, so `dockyard serve` does not carry it
in its supervisor process."""

from __future__ import annotations

import argparse
import asyncio
import sys

from registry.cmdline import load_or_exit, setup_logging
from registry.config import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mirror = subparsers.add_parser("mirror", help="the pull-through cache")
    commands = mirror.add_subparsers(dest="mirror_command", metavar="COMMAND", required=True)
    warm_parser = commands.add_parser("warm", help="pre-fill the cache with images (every platform)")
    # Only the flag form: a positional config file could not be told from the first REF.
    warm_parser.add_argument("--config", dest="config_flag", metavar="FILE", help="YAML config file")
    warm_parser.set_defaults(config_file=None)
    warm_parser.add_argument("refs", nargs="+", metavar="REF", help="NAME[:TAG] or NAME@DIGEST, as the mirror names it")
    warm_parser.set_defaults(func=warm_command)


def warm_command(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        return 2
    setup_logging(config)
    from registry.proxy.upstream import UpstreamError
    from registry.proxy.warm import warm

    try:
        done = asyncio.run(warm(config, args.refs))
    except ConfigError as exc:
        print(f"dockyard: config error: {exc}", file=sys.stderr)
        return 2
    except UpstreamError as exc:
        print(f"dockyard: {exc.message}", file=sys.stderr)
        return 1
    print(f"warmed {done.manifests} manifest(s) and {done.blobs} blob(s), {done.fetched_bytes} bytes fetched")
    return 0
