"""`dockyard user add|rm|list` and `dockyard tls selfsigned`."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from auth import robots_cli

if TYPE_CHECKING:
    from auth.config import AuthConfig
    from auth.htpasswd import HtpasswdFile

# Reads the `auth` section of a config file (None: the default file), raising `ConfigError`.
AuthLoader = Callable[[str | None], "AuthConfig"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], load_auth: AuthLoader) -> None:
    """Add `user` and `tls`; `load_auth` reads the `auth` section of the server's config."""
    user = subparsers.add_parser("user", help="manage the users of the htpasswd file")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = user_commands.add_parser("add", help="add a user or change their password")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    rm = user_commands.add_parser("rm", help="remove a user")
    rm.add_argument("name")
    listing = user_commands.add_parser("list", help="list the users")
    for parser in (add, rm, listing):
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--file", metavar="HTPASSWD", help="the htpasswd file (default: auth.htpasswd.path)")
        where.add_argument("--config", metavar="FILE", help="YAML config naming auth.htpasswd.path")
    add.set_defaults(func=user_add, load_auth=load_auth)
    rm.set_defaults(func=user_rm, load_auth=load_auth)
    listing.set_defaults(func=user_list, load_auth=load_auth)

    robots_cli.register(subparsers, load_auth)

    tls = subparsers.add_parser("tls", help="TLS certificates")
    tls_commands = tls.add_subparsers(dest="tls_command", metavar="ACTION", required=True)
    selfsigned = tls_commands.add_parser("selfsigned", help="write a private CA and a server certificate")
    selfsigned.add_argument(
        "--host",
        action="append",
        required=True,
        metavar="NAME",
        help="host name or IP address the registry is reached by (repeatable)",
    )
    selfsigned.add_argument("--out", default="certs", metavar="DIR", help="output directory (default: ./certs)")
    selfsigned.add_argument("--days", type=int, default=825, help="server certificate lifetime in days")
    selfsigned.set_defaults(func=tls_selfsigned)


def _users(args: argparse.Namespace) -> HtpasswdFile | None:
    # Imported here so that registering the commands stays cheap for every other command.
    from auth.htpasswd import HtpasswdFile

    if args.file:
        return HtpasswdFile(args.file)
    from typedconfig import ConfigError

    path = args.config or os.environ.get("DOCKYARD_CONFIG")
    try:
        auth = args.load_auth(path)
    except ConfigError as exc:
        print(f"dockyard: config error: {exc}", file=sys.stderr)
        return None
    if auth.htpasswd is None or not auth.htpasswd.path:
        print("dockyard: no htpasswd file: pass --file or a config with auth.htpasswd.path", file=sys.stderr)
        return None
    return HtpasswdFile(auth.htpasswd.path)


def _user_error() -> type[Exception]:
    from auth.htpasswd import UserError

    return UserError


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        # As `docker login --password-stdin`: the whole input, less its trailing newline.
        return sys.stdin.read().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("dockyard: no terminal to prompt on; use --password-stdin", file=sys.stderr)
        return None
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Repeat password: ") != first:
        print("dockyard: the passwords differ", file=sys.stderr)
        return None
    return first


def user_add(args: argparse.Namespace) -> int:
    users = _users(args)
    if users is None:
        return 2
    password = _read_password(args)
    if password is None:
        return 1
    try:
        new = users.set_password(args.name, password)
    except (_user_error(), OSError) as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    print(f"{'added user' if new else 'changed the password of'} {args.name} in {users.path}")
    return 0


def user_rm(args: argparse.Namespace) -> int:
    users = _users(args)
    if users is None:
        return 2
    try:
        removed = users.remove(args.name)
    except OSError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    if not removed:
        print(f"dockyard: no user {args.name} in {users.path}", file=sys.stderr)
        return 1
    print(f"removed user {args.name} from {users.path}")
    return 0


def user_list(args: argparse.Namespace) -> int:
    users = _users(args)
    if users is None:
        return 2
    try:
        names = users.users()
    except OSError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    for name in names:
        print(name)
    return 0


def tls_selfsigned(args: argparse.Namespace) -> int:
    from auth.tls import selfsigned

    try:
        written = selfsigned(args.host, args.out, args.days)
    except (ValueError, OSError) as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    ca = "wrote a new CA" if written.ca_created else "reused the CA"
    print(f"{ca} {written.ca_cert} and a server certificate for {', '.join(args.host)}")
    print("\nIn the registry's config:\n  http:\n    tls:")
    print(f"      certificate: {written.server_cert.resolve()}\n      key: {written.server_key.resolve()}")
    print("\nOn every Docker host that uses the registry (PORT is the registry's port):")
    print(f"  mkdir -p /etc/docker/certs.d/{args.host[0]}:PORT")
    print(f"  cp {written.ca_cert.resolve()} /etc/docker/certs.d/{args.host[0]}:PORT/ca.crt")
    return 0
