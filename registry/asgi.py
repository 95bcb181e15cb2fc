"""The ASGI factory uvicorn's worker processes call: each worker loads the same config the
`serve` command validated (file path and overrides handed over in the environment)."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from registry.app import create_app
from registry.config import load_config
from registry.logformat import configure_logging

CONFIG_PATH_ENV = "DOCKYARD_CONFIG"


def app_factory() -> Starlette:
    config = load_config(os.environ.get(CONFIG_PATH_ENV) or None)
    # A worker is a fresh process (spawned): it sets up its own logging from the same config.
    configure_logging(config)
    return create_app(config)
