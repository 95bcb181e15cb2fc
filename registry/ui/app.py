"""`ui_routes(config, store, controller)`: the web UI's routes, mounted at `ui.path`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from auth.base import AccessController
from registry.config import Config
from registry.events.notifier import Notifier
from registry.store import Store
from registry.ui.access import UiAccess
from registry.ui.checks import check_ui
from registry.ui.mirrors import MirrorMarks
from registry.ui.pages import UiPages
from registry.ui.session import SessionCodec, session_key


def ui_routes(
    config: Config, store: Store, controller: AccessController, events: Notifier | None = None
) -> list[BaseRoute]:
    lifetime = check_ui(config)
    base = config.ui.base
    root = None
    if config.storage.driver == "filesystem":
        root = config.storage.filesystem.rootdirectory if config.storage.filesystem else "./data"
    key = session_key(config.http.secret, root, config.http.workers != 1)
    public_host = urlsplit(config.http.host).netloc if config.http.host else ""
    access = UiAccess.of(controller)
    trust = config.http.trustforwardedheaders
    read_only = config.storage.maintenance.readonly.enabled
    codec = SessionCodec(key)
    mirrors = MirrorMarks(config.proxy)
    pages = UiPages(config.ui, store, access, codec, lifetime, public_host, trust, read_only, mirrors, events)
    page = pages.page
    routes: list[BaseRoute] = [
        Route("/", page(pages.home), methods=["GET"]),
        Route("/login", page(pages.login_page), methods=["GET", "POST"]),
        Route("/logout", page(pages.logout), methods=["POST"]),
        Route("/r/{name:path}/-/manifest/{reference}", page(pages.manifest), methods=["GET"]),
        Route("/r/{name:path}/-/blob/{digest}/download", page(pages.download), methods=["GET"]),
        Route("/r/{name:path}/-/blob/{digest}", page(pages.blob), methods=["GET"]),
        Route("/r/{name:path}/-/delete", page(pages.delete), methods=["GET", "POST"]),
        Route("/r/{name:path}", page(pages.repository), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=Path(__file__).parent / "static")),
    ]
    if not base:
        return routes

    async def to_slash(request: Request) -> Response:
        return RedirectResponse(f"{base}/", status_code=308)

    return [Route(base, to_slash, methods=["GET", "HEAD"]), Mount(base, routes=routes)]
