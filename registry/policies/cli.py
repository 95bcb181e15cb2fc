"""`dockyard quota`: each configured quota's usage, computed from the store (and recorded there)."""

from __future__ import annotations

import argparse
import asyncio

import orjson

from registry.cmdline import add_config_arguments, load_or_exit
from registry.policies.quota import Usage, compute_usage
from storage_backends import open_backend


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("quota", help="show each quota's stored bytes and limit")
    add_config_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=quota_command)


def _percent(usage: Usage) -> str:
    limit = usage.limit.bytes
    return f"{100.0 * usage.used / limit:.1f}%" if limit else "-"


def quota_command(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        return 2

    async def run() -> list[Usage]:
        backend = open_backend(config.storage.driver, config.storage.driver_options)
        try:
            return [await compute_usage(backend, limit) for limit in config.quotas.limits]
        finally:
            await backend.close()

    usages = asyncio.run(run())
    if args.json:
        rows = [{"quota": u.limit.key, "usedbytes": u.used, "maxbytes": u.limit.bytes} for u in usages]
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not usages:
        print("no quotas configured (quotas.limits)")
        return 0
    print(f"{'QUOTA':<32} {'USED':>14} {'LIMIT':>14} {'USE':>7}")
    for usage in usages:
        print(f"{usage.limit.key:<32} {usage.used:>14} {usage.limit.bytes:>14} {_percent(usage):>7}")
    return 0
