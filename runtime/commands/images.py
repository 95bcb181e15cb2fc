"""Image commands, with Docker's names and flags: pull, login, logout, images, rmi, history, and the `image`
group (ls, pull, rm, prune, history, inspect)."""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
import platform
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from oci.digest import InvalidDigest
from oci.platform import InvalidPlatform
from oci.reference import DEFAULT_REGISTRY, InvalidReference, Reference, familiar_name
from runtime import auth_config
from runtime.auth_config import AuthConfigError
from runtime.images import ImageError, ImageStore, LocalImage, default_root
from runtime.layers import LayerError

Handler = Callable[[argparse.Namespace], int]
if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _expected_errors() -> tuple[type[Exception], ...]:
    # oci.client pulls in httpx, which is slow to import; only commands that talk to a registry need it.
    from oci.client import ClientError

    return (
        ClientError,
        ImageError,
        LayerError,
        InvalidReference,
        InvalidPlatform,
        InvalidDigest,
        AuthConfigError,
        OSError,
    )


class _Refusal(Exception):
    pass


def register(subparsers: Subparsers) -> None:
    _add_pull(subparsers.add_parser("pull", help="Download an image from a registry"))
    _add_login(subparsers.add_parser("login", help="Log in to a registry"))
    logout = subparsers.add_parser("logout", help="Log out from a registry")
    logout.add_argument("server", nargs="?", default=DEFAULT_REGISTRY, metavar="SERVER")
    logout.set_defaults(func=logout_command)
    _add_images(subparsers.add_parser("images", help="List images"))
    _add_rmi(subparsers.add_parser("rmi", help="Remove one or more images"))
    _add_history(subparsers.add_parser("history", help="Show the history of an image"))

    group = subparsers.add_parser("image", help="Manage images").add_subparsers(dest="image_command", metavar="COMMAND")
    _add_images(group.add_parser("ls", aliases=["list"], help="List images"))
    _add_pull(group.add_parser("pull", help="Download an image from a registry"))
    _add_rmi(group.add_parser("rm", help="Remove one or more images"))
    _add_history(group.add_parser("history", help="Show the history of an image"))
    prune = group.add_parser("prune", help="Remove layers and blobs no image uses")
    prune.add_argument("-a", "--all", action="store_true", help="accepted for Docker compatibility")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    prune.set_defaults(func=prune_command)
    inspect = group.add_parser("inspect", help="Show details of one or more images (JSON)")
    inspect.add_argument("images", nargs="+", metavar="IMAGE")
    inspect.set_defaults(func=inspect_command)


def _add_pull(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--platform", help="os/arch[/variant] to pull from a multi-platform image")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP or unverified TLS")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress progress output")
    parser.add_argument("ref", metavar="NAME[:TAG|@DIGEST]")
    parser.set_defaults(func=pull_command)


def _add_login(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-u", "--username")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("-p", "--password")
    secret.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP or unverified TLS")
    parser.add_argument("server", nargs="?", default=DEFAULT_REGISTRY, metavar="SERVER")
    parser.set_defaults(func=login_command)


def _add_images(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    parser.add_argument("--digests", action="store_true", help="show digests")
    parser.add_argument("-f", "--filter", action="append", default=[], help="dangling=, reference=, label=, ...")
    parser.add_argument("--format", default="", help="a Go template, `table ...` or `json`")
    parser.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    parser.set_defaults(func=images_command)


def _add_rmi(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="remove even when a container uses it")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.set_defaults(func=rmi_command)


def _add_history(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    parser.add_argument("-H", "--human", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("image", metavar="IMAGE")
    parser.set_defaults(func=history_command)


def _handled(func: Handler) -> Handler:
    """One place that turns expected failures into Docker-style one-line errors and exit code 1."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except _Refusal as exc:
            print(str(exc), file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        except Exception as exc:
            if not isinstance(exc, _expected_errors()):
                raise
            print(f"Error: {exc}", file=sys.stderr)
            return 1

    return wrapper


def _require_root(command: str) -> None:
    if platform.system() != "Linux":
        raise _Refusal(f"dockyard {command} needs Linux (this is {platform.system()})")
    if os.geteuid() != 0:
        raise _Refusal(f"dockyard {command} needs root: image layers keep their owners and whiteouts are device nodes")


def _store() -> ImageStore:
    return ImageStore(default_root())


# --- pull, login, logout ---------------------------------------------------------------------------------------


@_handled
def pull_command(args: argparse.Namespace) -> int:
    _require_root("pull")
    import asyncio  # only the commands that talk to a registry need an event loop

    from runtime.pull import pull_image  # loads the registry client, which the other commands need not

    image = asyncio.run(pull_image(_store(), args.ref, args.platform, args.insecure, progress=not args.quiet))
    print(image.reference)
    return 0


@_handled
def login_command(args: argparse.Namespace) -> int:
    server = _server(args.server)
    username = args.username
    if args.password_stdin:
        if not username:
            raise _Refusal("Error: must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif args.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
        password = args.password
    else:
        if not username:
            if not sys.stdin.isatty():
                raise _Refusal("Error: cannot prompt for a username: stdin is not a terminal (use -u)")
            username = input("Username: ").strip()
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise _Refusal("Error: username and password are required")
    import asyncio

    from oci.client import Credentials, RegistryClient

    credentials = Credentials(username, password)
    endpoint = Reference(server, "x").endpoint
    root = default_root()
    insecure = args.insecure or server in auth_config.insecure_registries(root)

    async def check() -> None:
        async with RegistryClient(endpoint, credentials, insecure) as client:
            await client.login()

    asyncio.run(check())
    auth_config.store_credentials(root, server, credentials)
    print("Login Succeeded")
    return 0


@_handled
def logout_command(args: argparse.Namespace) -> int:
    server = _server(args.server)
    if auth_config.remove_credentials(default_root(), server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")
    return 0


def _server(text: str) -> str:
    """`https://host:port/` → `host:port`; Docker Hub's names → `docker.io`."""
    host = text.split("://", 1)[-1].split("/", 1)[0]
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return DEFAULT_REGISTRY
    try:
        return Reference.parse(f"{host}/x").registry
    except InvalidReference:
        raise _Refusal(f"Error: invalid registry address {text!r}") from None


# --- images, rmi, prune, history, inspect ----------------------------------------------------------------------


@_handled
def images_command(args: argparse.Namespace) -> int:
    store = _store()
    images = store.list()
    if args.repository:
        images = [i for i in images if _matches_filter(i, args.repository)]
    if args.filter:
        from runtime.commands.imagefilter import filter_images

        try:
            images = filter_images(store, images, args.filter)
        except ValueError as exc:
            raise _Refusal(f"Error response from daemon: {exc}") from None
    if args.format and not args.quiet:
        from runtime.commands.imageformat import render_images
        from runtime.listformat import TemplateError

        try:
            sys.stdout.write(render_images(store, images, args.format, not args.no_trunc, _ago, human_size))
        except TemplateError as exc:
            raise _Refusal(f"template parsing error: {exc}") from None
        return 0
    if args.quiet:
        seen: set[str] = set()
        for image in images:
            if image.id not in seen:
                seen.add(image.id)
                print(image.id if args.no_trunc else image.short_id)
        return 0
    header = ["REPOSITORY", "TAG", *(["DIGEST"] if args.digests else []), "IMAGE ID", "CREATED", "SIZE"]
    rows = []
    for image in images:
        ref = Reference.parse(image.reference)
        row = [familiar_name(ref.registry, ref.repository), ref.tag or "<none>"]
        if args.digests:
            row.append(ref.digest or image.manifest_digest)
        row += [
            image.id if args.no_trunc else image.short_id,
            _ago(image.config.get("created")),
            human_size(store.size(image)),
        ]
        rows.append(row)
    _table(header, rows)
    return 0


def _matches_filter(image: LocalImage, text: str) -> bool:
    ref = Reference.parse(image.reference)
    try:
        wanted = Reference.parse(text)
    except InvalidReference:
        return False
    if wanted.name != ref.name:
        return False
    return ":" not in text.rpartition("/")[2] or wanted.tag == ref.tag


@_handled
def rmi_command(args: argparse.Namespace) -> int:
    _require_root("rmi")
    store = _store()
    status = 0
    for ref in args.images:
        try:
            result = store.remove(ref, force=args.force)
        except ImageError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            status = 1
            continue
        for untagged in result.untagged:
            print(f"Untagged: {Reference.parse(untagged).familiar()}")
        for deleted in result.deleted:
            print(f"Deleted: {deleted}")
    return status


@_handled
def prune_command(args: argparse.Namespace) -> int:
    from runtime.commands.confirm import confirm, reclaimed

    _require_root("image prune")
    if not args.force and not confirm("WARNING! This will remove all dangling images."):
        return 0
    store = _store()
    store.prune_build_cache()  # `image prune` cleans the build cache too: its layers are dangling images
    result = store.prune()
    if result.deleted:
        print("Deleted Images:\n" + "".join(f"deleted: {digest}\n" for digest in result.deleted))
    print(reclaimed(result.reclaimed))
    return 0


@_handled
def history_command(args: argparse.Namespace) -> int:
    store = _store()
    image = store.resolve(args.image)
    if image is None:
        raise _Refusal(f"Error: No such image: {args.image}")
    rows = history_rows(store, image)
    if args.quiet:
        for row in rows:
            print(row["id"] if args.no_trunc else _short(row["id"]))
        return 0
    table = []
    for row in rows:
        created_by = row["created_by"]
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        table.append(
            [
                row["id"] if args.no_trunc else _short(row["id"]),
                _ago(row["created"]) if args.human else row["created"] or "",
                created_by,
                human_size(row["size"]) if args.human else str(row["size"]),
                row["comment"],
            ]
        )
    _table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], table)
    return 0


def history_rows(store: ImageStore, image: LocalImage) -> list[dict[str, Any]]:
    """The config's history, newest first, each non-empty step paired with its layer's unpacked size."""
    diff_ids = list(image.config.get("rootfs", {}).get("diff_ids", []))
    history = list(image.config.get("history") or [])
    if not history:
        history = [{"created_by": ""} for _ in diff_ids]
    rows = []
    layer = 0
    for step in history:
        size = 0
        if not step.get("empty_layer") and layer < len(diff_ids):
            size = store.layer_size(diff_ids[layer])
            layer += 1
        rows.append(
            {
                "id": "<missing>",
                "created": step.get("created"),
                "created_by": str(step.get("created_by", "")).replace("\n", " "),
                "size": size,
                "comment": str(step.get("comment", "")),
            }
        )
    rows.reverse()
    if rows:
        rows[0]["id"] = image.id
    return rows


@_handled
def inspect_command(args: argparse.Namespace) -> int:
    store = _store()
    found, status = [], 0
    for ref in args.images:
        try:
            found.append(store.inspect(ref))
        except ImageError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    print(json.dumps(found, indent=4))
    return status


# --- formatting ------------------------------------------------------------------------------------------------


def human_size(size: int) -> str:
    """Docker's sizes: decimal units, three significant digits (`4.26MB`)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _ago(created: object) -> str:
    from runtime.commands.humanize import ago

    return ago(created)


def _short(image_id: str) -> str:
    return image_id.partition(":")[2][:12] if image_id.startswith("sha256:") else image_id


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("   ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
