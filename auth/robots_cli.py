"""`dockyard robot add/rm/list`: robot accounts in the file `auth.robots.path` names."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from typedconfig import ConfigError, parse_duration

if TYPE_CHECKING:
    from auth.config import AuthConfig
    from auth.robots import RobotFile


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], load_auth: Callable[[str | None], AuthConfig]
) -> None:
    robot = subparsers.add_parser("robot", help="manage robot accounts (tokens for CI)")
    commands = robot.add_subparsers(dest="robot_command", metavar="ACTION", required=True)
    add = commands.add_parser("add", help="create a robot and print its token (shown once)")
    add.add_argument("name")
    add.add_argument(
        "--scope",
        action="append",
        required=True,
        metavar="GLOB:ACTIONS",
        help="repositories and actions, e.g. 'team/*:pull,push' (repeatable)",
    )
    add.add_argument("--expires", default="0", metavar="DURATION", help="lifetime: 30d, 720h (default: never)")
    rm = commands.add_parser("rm", help="revoke a robot")
    rm.add_argument("name")
    listing = commands.add_parser("list", help="list the robots")
    for parser in (add, rm, listing):
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--file", metavar="ROBOTS", help="the robots file (default: auth.robots.path)")
        where.add_argument("--config", metavar="FILE", help="YAML config naming auth.robots.path")
    add.set_defaults(func=robot_add, load_auth=load_auth)
    rm.set_defaults(func=robot_rm, load_auth=load_auth)
    listing.set_defaults(func=robot_list, load_auth=load_auth)


def _robots(args: argparse.Namespace) -> RobotFile | None:
    from auth.robots import RobotFile

    if args.file:
        return RobotFile(args.file)
    try:
        auth = args.load_auth(args.config or os.environ.get("DOCKYARD_CONFIG"))
    except ConfigError as exc:
        print(f"dockyard: config error: {exc}", file=sys.stderr)
        return None
    if auth.robots is None or not auth.robots.path:
        print("dockyard: no robots file: pass --file or a config with auth.robots.path", file=sys.stderr)
        return None
    return RobotFile(auth.robots.path)


def _lifetime(text: str) -> float:
    """`30d`, `2w` as well as Go durations (`720h`)."""
    text = text.strip()
    for suffix, seconds in (("d", 86400.0), ("w", 7 * 86400.0)):
        if text.endswith(suffix) and text[:-1].replace(".", "", 1).isdigit():
            return float(text[:-1]) * seconds
    return parse_duration(text)


def robot_add(args: argparse.Namespace) -> int:
    from auth.robots import RobotError, Scope

    robots = _robots(args)
    if robots is None:
        return 2
    try:
        scopes = [Scope.parse(text) for text in args.scope]
        lifetime = _lifetime(args.expires)
        token = robots.add(args.name, scopes, lifetime)
    except (RobotError, ValueError, OSError) as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() + lifetime)) if lifetime else "never"
    print(f"robot robot${args.name} created (expires {expiry}); its token, shown only now:", file=sys.stderr)
    print(token)
    return 0


def robot_rm(args: argparse.Namespace) -> int:
    robots = _robots(args)
    if robots is None:
        return 2
    if not robots.remove(args.name):
        print(f"dockyard: no robot {args.name} in {robots.path}", file=sys.stderr)
        return 1
    print(f"removed robot robot${args.name}")
    return 0


def robot_list(args: argparse.Namespace) -> int:
    robots = _robots(args)
    if robots is None:
        return 2
    now = time.time()
    for robot in sorted(robots.robots().values(), key=lambda r: r.name):
        expiry = time.strftime("%Y-%m-%d %H:%M", time.gmtime(robot.expires)) if robot.expires else "never"
        state = " (expired)" if robot.expired(now) else ""
        scopes = " ".join(str(s) for s in robot.scopes)
        print(f"robot${robot.name}\texpires {expiry}{state}\t{scopes}")
    return 0
