"""`run` flags for the container's environment: --tmpfs, --ulimit, --add-host, --dns, --dns-search,
--dns-option and --restart, parsed with Docker's rules and error wording into ContainerSpec fields."""

from __future__ import annotations

import argparse
import os
from typing import Any, cast

from runtime.etcfiles import parse_add_host
from runtime.rlimits import RLIMITS
from runtime.rootfs import INIT_BINARY
from runtime.spec import RestartPolicy, Rlimit, Tmpfs

__all__ = ["add_arguments", "parse_restart", "parse_ulimit", "process_fields", "spec_fields"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTIONS]")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]")
    p.add_argument("--add-host", action="append", default=[], metavar="HOST:IP")
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[])
    p.add_argument("--restart", default="no", metavar="POLICY")


def parse_ulimit(value: str) -> Rlimit:
    def bad(reason: str) -> ValueError:
        return ValueError(f'invalid argument "{value}" for "--ulimit" flag: {reason}')

    name, sep, limits = value.partition("=")
    if not sep:
        raise bad(f"invalid ulimit argument: {value}")
    if name not in RLIMITS:
        raise bad(f"invalid ulimit type: {name}")
    parts = limits.split(":")
    if len(parts) > 2:
        raise bad(f"too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`")
    numbers = []
    for part in parts:
        try:
            numbers.append(int(part))
        except ValueError:
            raise bad(f'strconv.ParseInt: parsing "{part}": invalid syntax') from None
    soft, hard = numbers[0], numbers[-1]
    if soft != -1 and hard != -1 and soft > hard:
        raise bad(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return Rlimit(name, soft, hard)


_POLICIES = ("no", "on-failure", "always", "unless-stopped")


def parse_restart(value: str) -> RestartPolicy:
    name, sep, count = value.partition(":")
    if sep and not name:
        raise ValueError("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = int(count)
        except ValueError:
            raise ValueError("invalid restart policy format: maximum retry count must be an integer") from None
    if name not in _POLICIES:
        raise ValueError(f"Error response from daemon: invalid restart policy '{name}'")
    if count and name != "on-failure":
        raise ValueError(f"Error response from daemon: maximum retry count cannot be used with restart policy '{name}'")
    if retries < 0:
        raise ValueError("Error response from daemon: maximum retry count cannot be negative")
    return RestartPolicy(cast(Any, name), retries)


def parse_tmpfs(value: str) -> Tmpfs:
    target, _, options = value.partition(":")
    if not target.startswith("/"):
        raise ValueError(f"Error response from daemon: invalid mount path: '{target}' mount path must be absolute")
    return Tmpfs(target, options)


def spec_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ContainerSpec fields these flags set; ValueError in Docker's words for a bad one."""
    for host in args.add_host:
        parse_add_host(host)
    if args.init and not os.path.isfile(INIT_BINARY):
        raise ValueError(f"--init needs {INIT_BINARY}: install Debian's tini package")
    restart = parse_restart(args.restart)
    if restart.name != "no" and args.rm:
        raise ValueError("conflicting options: cannot specify both --restart and --rm")
    return {
        "extra_hosts": tuple(args.add_host),
        "dns": tuple(args.dns),
        "dns_search": tuple(args.dns_search),
        "dns_options": tuple(args.dns_option),
        "tmpfs": tuple(parse_tmpfs(t) for t in args.tmpfs),
        "restart": restart,
    }


def process_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ProcessSpec fields: the --ulimit rlimits, the last flag for a name winning."""
    limits = {r.name: r for r in (parse_ulimit(u) for u in args.ulimit)}
    return {"rlimits": tuple(limits.values())}
