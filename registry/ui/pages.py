"""The UI's pages: each reads through `UiModel` (the Store) and renders a Jinja2 template.

Every page asks the visitor's grant before it shows a repository: a repository the visitor may
not pull is answered exactly like one that does not exist, so names never leak.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import jinja2
import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from auth.base import SUBJECT_KEY, AuthError, Grant
from oci.digest import Digest, InvalidDigest
from oci.reference import valid_name
from registry.audit.record import AUDIT_KEY
from registry.errors import ErrorCode, RegistryError
from registry.events.notifier import Notifier
from registry.store import Store
from registry.ui.access import UiAccess
from registry.ui.config import UiConfig
from registry.ui.mirrors import MirrorMarks
from registry.ui.model import UiModel
from registry.ui.session import COOKIE, Session, SessionCodec
from storage_backends import PathNotFound

REPOSITORIES_PER_PAGE = 50
TAGS_PER_PAGE = 50
MAX_FORM_BYTES = 16 * 1024
SORTS = ("name", "-name", "pushed", "-pushed")
_HERE = Path(__file__).parent
# Pages hold no third-party content: everything comes from here, scripts only from our file.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def when(stamp: float | str | None) -> str:
    if stamp is None or stamp == "":
        return "—"
    if isinstance(stamp, str):
        try:
            moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return stamp
    else:
        moment = datetime.datetime.fromtimestamp(stamp, datetime.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def short(digest: object) -> str:
    text = str(digest)
    algorithm, _, encoded = text.partition(":")
    return f"{algorithm}:{encoded[:12]}" if encoded else text


class _Refused(Exception):
    def __init__(self, status: int, message: str, code: ErrorCode = ErrorCode.DENIED) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class UiPages:
    def __init__(
        self,
        config: UiConfig,
        store: Store,
        access: UiAccess,
        codec: SessionCodec,
        session_lifetime: float,
        public_host: str = "",
        trust_forwarded: bool = False,
        read_only: bool = False,
        mirrors: MirrorMarks | None = None,
        events: Notifier | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.model = UiModel(store)
        self.access = access
        self.codec = codec
        self.lifetime = session_lifetime
        self.public_host = public_host
        self.trust_forwarded = trust_forwarded
        self.read_only = read_only
        self.mirrors = mirrors or MirrorMarks(None)
        self.events = events
        self.base = config.base
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(size=human_size, when=when, short=short, urlpart=lambda s: quote(str(s)))
        self.static_version = str(int(max(p.stat().st_mtime for p in (_HERE / "static").iterdir())))

    # -- plumbing ----------------------------------------------------------------------------

    def _session(self, request: Request) -> tuple[Session, bool]:
        """The visitor's session, and whether it is new (then the response sets the cookie)."""
        session = self.codec.decode(request.cookies.get(COOKIE))
        if session is not None and session.user is not None and self.access.stamp(session.user) != session.stamp:
            session = None  # password changed or user removed since the login
        if session is not None and session.user is not None and self.access.mode != "login":
            session = None
        if session is None:
            return Session.anonymous(self.lifetime), True
        return session, False

    def _set_cookie(self, request: Request, response: Response, session: Session | None) -> None:
        path = self.base or "/"
        # Behind a proxy that ends TLS (trusted forwarded headers), the browser's side is what counts.
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip() if self.trust_forwarded else ""
        secure = request.url.scheme == "https" or forwarded == "https"
        if session is None:
            response.delete_cookie(COOKIE, path=path, secure=secure, httponly=True, samesite="strict")
            return
        response.set_cookie(
            COOKIE,
            self.codec.encode(session),
            max_age=max(int(session.expires - time.time()), 1),
            path=path,
            secure=secure,
            httponly=True,
            samesite="strict",
        )

    def page(self, handler: Callable[[Request, Session, Grant], Awaitable[Response]]) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            session, fresh = self._session(request)
            grant = self.access.grant(session.user)
            try:
                if request.method == "POST":
                    await self._check_post(request, session)
                response = await handler(request, session, grant)
            except _Refused as exc:
                response = self._error(request, session, exc.status, exc.message, exc.code)
            except RegistryError as exc:
                status = 404 if exc.status in (401, 403) else exc.status
                response = self._error(request, session, status, exc.message, exc.code)
            except AuthError as exc:
                response = self._error(request, session, exc.status, exc.message, ErrorCode.DENIED)
            except PathNotFound:
                response = self._error(request, session, 404, "it vanished meanwhile", ErrorCode.MANIFEST_UNKNOWN)
            for key, value in SECURITY_HEADERS.items():
                response.headers.setdefault(key, value)
            new_session = getattr(request.state, "new_session", None)
            if getattr(request.state, "end_session", False):
                self._set_cookie(request, response, None)
            elif new_session is not None:
                self._set_cookie(request, response, new_session)
            elif fresh:
                self._set_cookie(request, response, session)
            return response

        return endpoint

    async def _check_post(self, request: Request, session: Session) -> None:
        # A page of another site can post a form here but cannot read the token from ours; the
        # Origin check refuses such a post even before the token is looked at.
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc not in self._own_hosts(request):
            raise _Refused(403, "cross-site request refused")
        form = await self._form(request)
        request.state.form = form
        token = form.get("csrf") or request.headers.get("x-csrf-token")
        if not self.codec.csrf_valid(session, token):
            raise _Refused(403, "missing or stale form token: reload the page and try again")

    def _own_hosts(self, request: Request) -> set[str]:
        """The names this UI is reached by: the Host header, `http.host`, and a trusted proxy's host."""
        hosts = {request.headers.get("host", ""), self.public_host}
        if self.trust_forwarded:
            hosts.add(request.headers.get("x-forwarded-host", "").split(",")[0].strip())
        return hosts - {""}

    async def _form(self, request: Request) -> dict[str, str]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type not in ("application/x-www-form-urlencoded", ""):
            raise _Refused(415, "forms are sent url-encoded", ErrorCode.UNSUPPORTED)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise _Refused(413, "form too large", ErrorCode.SIZE_INVALID)
        return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))

    def _context(self, request: Request, session: Session, **extra: Any) -> dict[str, Any]:
        return {
            "title": self.config.title,
            "base": self.base,
            "user": session.user,
            "can_login": self.access.mode == "login",
            "login_elsewhere": self.access.mode == "external",
            "csrf": self.codec.csrf_token(session),
            "static": f"{self.base}/static",
            "static_version": self.static_version,
            "host": self._host(request),
            "path": request.url.path,
            "mirror_of": self.mirrors.of,
            **extra,
        }

    def _host(self, request: Request) -> str:
        return self.public_host or request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"

    def render(self, request: Request, session: Session, template: str, status: int = 200, **extra: Any) -> Response:
        html = self.templates.get_template(template).render(self._context(request, session, **extra))
        return HTMLResponse(html, status_code=status)

    def _error(self, request: Request, session: Session, status: int, message: str, code: ErrorCode) -> Response:
        if "text/html" not in request.headers.get("accept", "text/html"):
            body = RegistryError(code, message=message).body()
            return Response(orjson.dumps(body), status_code=status, media_type="application/json")
        return self.render(request, session, "error.html", status=status, status_code=status, message=message)

    def _repository(self, request: Request, grant: Grant) -> str:
        name = str(request.path_params["name"])
        if not valid_name(name) or not grant.allows("repository", name, "pull"):
            # Not allowed looks exactly like not there.
            raise _Refused(404, f"no repository {name}", ErrorCode.NAME_UNKNOWN)
        return name

    def _can_delete(self, grant: Grant, name: str) -> bool:
        writable = self.store.delete_enabled and not self.read_only
        return writable and grant.allows("repository", name, "delete")

    @staticmethod
    def _page_number(request: Request) -> int:
        try:
            return max(int(request.query_params.get("page", "1")), 1)
        except ValueError:
            return 1

    def _query(self, request: Request, **changes: Any) -> str:
        params = {k: v for k, v in request.query_params.items() if k not in changes}
        params.update({k: str(v) for k, v in changes.items() if v not in (None, "")})
        return "?" + urlencode(params) if params else "?"

    # -- pages -------------------------------------------------------------------------------

    async def home(self, request: Request, session: Session, grant: Grant) -> Response:
        query = request.query_params.get("q", "").strip().lower()
        names = [n for n in await self.model.repositories() if grant.allows("repository", n, "pull") and query in n]
        page = self._page_number(request)
        pages = max(math.ceil(len(names) / REPOSITORIES_PER_PAGE), 1)
        page = min(page, pages)
        visible = names[(page - 1) * REPOSITORIES_PER_PAGE : page * REPOSITORIES_PER_PAGE]
        rows = await self.model.repository_rows(visible)
        everything = self.access.sees_everything(session.user)
        totals = await self.model.blob_totals() if everything else None
        last_gc = await self.model.last_gc() if everything else None
        return self.render(
            request,
            session,
            "home.html",
            rows=rows,
            totals=totals,
            last_gc=last_gc,
            query=query,
            page=page,
            pages=pages,
            total=len(names),
            prev_link=self._query(request, page=page - 1) if page > 1 else None,
            next_link=self._query(request, page=page + 1) if page < pages else None,
        )

    async def repository(self, request: Request, session: Session, grant: Grant) -> Response:
        name = self._repository(request, grant)
        query = request.query_params.get("q", "").strip()
        sort = request.query_params.get("sort", "name")
        if sort not in SORTS:
            sort = "name"
        every = await self.store.tags(name)
        tags = [t for t in every if query.lower() in t.lower()]
        if sort.endswith("pushed"):
            links = await self.model.tag_links(name, tags)
            tags = sorted((t for t in tags if t in links), key=lambda t: (links[t][1], t))
        if sort.startswith("-"):
            tags.reverse()
        page = self._page_number(request)
        pages = max(math.ceil(len(tags) / TAGS_PER_PAGE), 1)
        page = min(page, pages)
        rows = await self.model.tag_rows(name, tags[(page - 1) * TAGS_PER_PAGE : page * TAGS_PER_PAGE])
        return self.render(
            request,
            session,
            "repository.html",
            name=name,
            rows=rows,
            query=query,
            sort=sort,
            sort_links={s: self._query(request, sort=s, page=None) for s in SORTS},
            page=page,
            pages=pages,
            total=len(tags),
            prev_link=self._query(request, page=page - 1) if page > 1 else None,
            next_link=self._query(request, page=page + 1) if page < pages else None,
            can_delete=self._can_delete(grant, name),
            deleted=request.query_params.get("deleted"),
            pull_tag="latest" if "latest" in every or not every else every[-1],
        )

    async def manifest(self, request: Request, session: Session, grant: Grant) -> Response:
        name = self._repository(request, grant)
        reference = request.path_params["reference"]
        detail = await self.model.detail(name, reference)
        return self.render(
            request,
            session,
            "manifest.html",
            name=name,
            reference=reference,
            is_tag=":" not in reference,
            detail=detail,
            can_delete=self._can_delete(grant, name),
        )

    async def blob(self, request: Request, session: Session, grant: Grant) -> Response:
        name = self._repository(request, grant)
        digest = _parse_digest(request.path_params["digest"])
        info = await self.store.stat_blob(name, digest)
        layer, made_in = None, None
        manifest_ref = request.query_params.get("manifest")
        if manifest_ref:
            try:
                made_in = await self.model.detail(name, manifest_ref)
                layer = next((entry for entry in made_in.layers if entry.digest == digest), None)
            except RegistryError:
                made_in = None
        return self.render(
            request, session, "blob.html", name=name, digest=digest, size=info.size, layer=layer, made_in=made_in
        )

    async def download(self, request: Request, session: Session, grant: Grant) -> Response:
        name = self._repository(request, grant)
        digest = _parse_digest(request.path_params["digest"])
        info = await self.store.stat_blob(name, digest)
        filename = f"{digest.algorithm}-{digest.encoded[:16]}"
        headers = {
            "Content-Length": str(info.size),
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Docker-Content-Digest": str(digest),
        }
        return StreamingResponse(self.store.read_blob(digest), headers=headers, media_type="application/octet-stream")

    async def delete(self, request: Request, session: Session, grant: Grant) -> Response:
        name = self._repository(request, grant)
        if not self._can_delete(grant, name):
            if self.read_only:
                raise _Refused(405, "this registry is in read-only mode", ErrorCode.UNSUPPORTED)
            disabled = not self.store.delete_enabled
            raise _Refused(403, "deletes are disabled on this registry" if disabled else "you may not delete here")
        if request.method == "POST":
            reference = request.state.form.get("reference", "")
        else:
            reference = request.query_params.get("reference", "")
        if not reference:
            raise _Refused(400, "say what to delete", ErrorCode.MANIFEST_INVALID)
        plan = await self.model.delete_plan(name, reference)
        if request.method == "GET":
            return self.render(request, session, "delete.html", name=name, plan=plan)
        tags = await self.store.delete_manifest(name, reference)
        if self.events is not None:
            # The same events as the API's DELETE (registry/handlers/manifests.py), by the visitor.
            request.scope[SUBJECT_KEY] = grant.subject
            await self.events.deleted(request, name, digest=reference if ":" in reference else "", tags=tags)
        request.scope[AUDIT_KEY] = {
            "action": "delete",
            "via": "ui",
            "user": grant.subject,
            "repository": name,
            "reference": reference,
            "tags": list(plan.tags_removed) or None,
            "digest": str(plan.digest),
        }
        what = reference if plan.by_tag else short(plan.digest)
        target = f"{self.base}/r/{name}?" + urlencode({"deleted": what})
        return RedirectResponse(target, status_code=303)

    async def login_page(self, request: Request, session: Session, grant: Grant) -> Response:
        if self.access.mode != "login":
            raise _Refused(404, "this registry has no login here", ErrorCode.UNSUPPORTED)
        error = None
        status = 200
        if request.method == "POST":
            form = request.state.form
            user, password = form.get("username", ""), form.get("password", "")
            stamp = await self.access.login(request, user, password) if user and password else None
            if stamp is not None:
                # A new session id on login: a token or cookie planted before it is worthless after.
                request.state.new_session = Session.new(user, stamp, self.lifetime)
                return RedirectResponse(_safe_next(self.base, form.get("next", "")), status_code=303)
            error, status = "Wrong user name or password.", 401
        return self.render(
            request,
            session,
            "login.html",
            status=status,
            error=error,
            next=request.query_params.get("next", "") or (request.state.form.get("next", "") if error else ""),
        )

    async def logout(self, request: Request, session: Session, grant: Grant) -> Response:
        request.state.end_session = True
        return RedirectResponse(f"{self.base}/", status_code=303)


def _parse_digest(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except InvalidDigest:
        raise _Refused(404, "not a digest", ErrorCode.DIGEST_INVALID) from None


def _safe_next(base: str, target: str) -> str:
    """Where to go after login: only a path of this UI, never another site."""
    if target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/"
