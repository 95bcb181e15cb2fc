"""The server's subcommands: serve (and gc, user, tls, doctor, events, ..., mounted from their modules)."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from typing import Any

from auth.config import AuthConfig
from registry.cmdline import add_config_arguments, config_path, load_or_exit, setup_logging
from registry.config import Config, ConfigError, load_config

log = logging.getLogger("dockyard")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run the registry server")
    add_config_arguments(serve)
    serve.add_argument("--host", help="address to listen on (overrides http.addr)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides http.addr)")
    serve.add_argument("--workers", type=int, help="worker processes (overrides http.workers; 0 = one per core)")
    serve.set_defaults(func=serve_command)
    # The other server subcommands register themselves; their modules import no app.
    from auth import cli as auth_cli
    from registry import doctor, gc
    from registry.events import cli as events_cli
    from registry.policies import cli as policies_cli
    from registry.proxy import cli as mirror_cli

    auth_cli.register(subparsers, _auth_section)
    for extra in (gc, doctor, mirror_cli, policies_cli, events_cli):
        extra.register(subparsers)


def _auth_section(path: str | None) -> AuthConfig:
    return load_config(path).auth


def _overrides(args: argparse.Namespace, config: Config) -> dict[str, str]:
    if args.host is None and args.port is None:
        return {}
    host, port = config.host_port
    host = args.host if args.host is not None else host
    port = args.port if args.port is not None else port
    # A host or port on the command line means TCP, whatever the file's http.net says.
    host = host or "127.0.0.1"
    port = port or 5000
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {"DOCKYARD_HTTP_ADDR": addr, "DOCKYARD_HTTP_NET": "tcp"}


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
        # No WebSocket routes: uvicorn's websockets protocol would cost every worker ~7 MiB.
        "ws": "none",
        "access_log": False,
        # uvicorn's own records go through the root handler, in the configured format.
        "log_config": None,
        "log_level": "warning" if config.log.level in ("warn", "warning", "error") else "info",
        "timeout_keep_alive": 30,
        "timeout_graceful_shutdown": int(config.http.draintimeout) or None,
        "backlog": 4096,
        "server_header": False,
    }
    # uvicorn trusts X-Forwarded-* from 127.0.0.1 by default: a same-host proxy that passes the
    # client's headers on would let anyone choose their address (and dodge the login limit).
    options["proxy_headers"] = config.http.trustforwardedheaders
    if config.http.net == "unix":
        options["uds"] = config.http.addr
    if config.http.tls.certificate:
        from registry.tls import server_context, uvicorn_context

        try:
            server_context(config.http.tls)  # fails here, with the key's name, rather than in a worker
        except ConfigError as exc:
            print(f"dockyard: config error: {exc}", file=sys.stderr)
            return 2
        options["ssl_certfile"] = config.http.tls.certificate
        options["ssl_keyfile"] = config.http.tls.key or None
        options["ssl_context_factory"] = functools.partial(uvicorn_context, config.http.tls)
    scheme = "https" if config.http.tls.certificate else "http"
    where = f"{scheme}+unix://{config.http.addr}" if config.http.net == "unix" else f"{scheme}://{host}:{port}"
    log.info("dockyard serving on %s (storage: %s, workers: %d)", where, config.storage.driver, workers)
    try:
        if workers == 1:
            from registry.app import create_app

            app = create_app(config)  # also checks what only the app can (auth keys, rules)
        else:
            from auth.factory import open_controller

            # The workers build their own apps; this process only checks the auth config (and
            # creates the token key once, before they race to).
            open_controller(config.auth, config.auth_context)
            if config.audit.enabled:
                from registry.audit.sink import check as check_audit

                check_audit(config.audit)
            if config.ui.enabled:
                from registry.ui.checks import check_ui

                check_ui(config)
            if config.proxy is not None:
                from registry.proxy.install import check

                check(config.proxy)
    except ConfigError as exc:
        print(f"dockyard: config error: {exc}", file=sys.stderr)
        return 2
    if workers == 1:
        uvicorn.run(app, **options)
    else:
        uvicorn.run("registry.asgi:app_factory", factory=True, workers=workers, **options)
    return 0


__all__ = ["register"]
