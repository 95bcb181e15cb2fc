"""The server's subcommands: serve (and gc, user, tls, doctor, mounted from their modules)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from registry.config import Config, ConfigError, load_config, parse_duration

log = logging.getLogger("dockyard")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run the registry server")
    add_config_arguments(serve)
    serve.add_argument("--host", help="address to listen on (overrides http.addr)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides http.addr)")
    serve.add_argument("--workers", type=int, help="worker processes (overrides http.workers; 0 = one per core)")
    serve.set_defaults(func=serve_command)
    for module in _EXTRA_COMMANDS:
        try:
            extra = __import__(module, fromlist=["register"])
        except ImportError:
            continue
        extra.register(subparsers)


# Subcommand modules of the server side that register themselves when present.
_EXTRA_COMMANDS = ("auth.cli", "registry.gc", "registry.doctor")


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


def _overrides(args: argparse.Namespace, config: Config) -> dict[str, str]:
    if args.host is None and args.port is None:
        return {}
    host, port = config.host_port
    host = args.host if args.host is not None else host
    port = args.port if args.port is not None else port
    return {"DOCKYARD_HTTP_ADDR": f"[{host}]:{port}" if ":" in host else f"{host}:{port}"}


def serve_command(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_or_exit(args)
    if config is None:
        return 2
    overrides = _overrides(args, config)
    if args.workers is not None:
        overrides["DOCKYARD_HTTP_WORKERS"] = str(args.workers)
    if overrides:
        config = load_or_exit(args, overrides)
        if config is None:
            return 2
    os.environ.update(overrides)
    path = config_path(args)
    if path:
        os.environ["DOCKYARD_CONFIG"] = os.path.abspath(path)
    setup_logging(config)
    return run_server(config)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_server(config: Config) -> int:
    import uvicorn

    from registry.metrics import prepare_multiprocess

    host, port = config.host_port
    workers = config.http.workers or default_workers()
    # Before the workers start: prometheus-client picks its storage when first imported.
    prepare_multiprocess(workers if config.metrics.enabled else 1)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        # httptools, quiet about TLS handshakes on the plain port (registry/plainport.py).
        "http": "registry.plainport:PlainPortProtocol",
        "access_log": False,
        # uvicorn's own records go through the root handler, in the configured format.
        "log_config": None,
        "log_level": "warning" if config.log.level in ("warn", "warning", "error") else "info",
        "timeout_keep_alive": 30,
        "timeout_graceful_shutdown": int(parse_duration(config.http.draintimeout)) or None,
        "backlog": 4096,
        "server_header": False,
    }
    if config.http.tls.certificate:
        options["ssl_certfile"] = config.http.tls.certificate
        options["ssl_keyfile"] = config.http.tls.key
    scheme = "https" if config.http.tls.certificate else "http"
    log.info(
        "dockyard serving on %s://%s:%d (storage: %s, workers: %d)", scheme, host, port, config.storage.driver, workers
    )
    try:
        if workers == 1:
            from registry.app import create_app

            app = create_app(config)  # also checks what only the app can (auth keys, rules)
        else:
            from auth.factory import open_controller

            # The workers build their own apps; this process only checks the auth config (and
            # creates the token key once, before they race to).
            open_controller(config)
    except ConfigError as exc:
        print(f"dockyard: config error: {exc}", file=sys.stderr)
        return 2
    if workers == 1:
        uvicorn.run(app, **options)
    else:
        uvicorn.run("registry.asgi:app_factory", factory=True, workers=workers, **options)
    return 0


__all__ = ["add_config_arguments", "config_path", "load_or_exit", "register", "setup_logging"]
