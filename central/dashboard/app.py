"""The site console's web application (Starlette): log-in, pages, live updates, acknowledge.

Every route except `/login` and `/static/` needs a session (`RequireLogin` wraps the whole
app, so a route added later is protected by default). Live updates are server-sent events:
one poller (`Hub`) reads the database every `refresh_s` seconds and every open page gets the
parts that changed as HTML rendered here, so the first page load and the updates share the
same templates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.dashboard.data import ConsoleData, Snapshot
from central.dashboard.sessions import LiveSessions, LoginThrottle
from central.dashboard.texts import LANGS, Words, pct_level, response_level
from central.dashboard.users import User, UserStore

log = logging.getLogger("careterm.dashboard")

HERE = Path(__file__).resolve().parent
PUBLIC_PATH, PUBLIC_PREFIX = "/login", "/static/"  # all else needs a session
DATA_PREFIXES = ("/api/", "/events", "/alerts/")  # answered with 401 instead of a redirect
RERENDER_S = 30.0  # pages get fresh "3 min ago" texts at least this often
LOGIN_FAIL_DELAY_S = 1.0
MAX_BODY = 64 * 1024  # a log-in, logout or acknowledge form is a few hundred bytes
STREAMS_PER_SESSION = 8  # open /events streams per log-in (a console, a wall, a few tabs)
# Device-sent text is shown as text: no control characters, and no bidi controls that would
# reverse what follows them on the line ("printer ok" drawn over "printer error").
UNSHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

FRAGMENTS = {
    "console": {
        "f-banner": "_banner.html",
        "f-summary": "_summary.html",
        "f-alerts": "_alerts.html",
        "f-devices": "_devices.html",
        "f-windows": "_windows.html",
        "f-staff": "_staff.html",
    },
    "wall": {
        "f-banner": "_banner.html",
        "w-summary": "_wall_summary.html",
        "w-windows": "_wall_windows.html",
        "w-side": "_wall_side.html",
    },
}


@dataclass
class Settings:
    data: ConsoleData
    users: UserStore
    secret: str
    tz: tzinfo | None = None
    refresh_s: float = 2.0
    https: bool = False
    session_hours: float = 12.0
    site_name: str = ""


class Hub:
    """Polls the database and tells the open pages when what they show has changed."""

    def __init__(self, data: ConsoleData, refresh_s: float) -> None:
        self.data = data
        self.refresh_s = refresh_s
        self.snapshot: Snapshot | None = None
        self.version = ""
        self.error: str | None = None
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self.closing = False

    async def refresh(self) -> None:
        try:
            snap = await anyio.to_thread.run_sync(self.data.snapshot)
            if self.error:
                log.info("dashboard: the database can be read again")
            self.error = None
        except Exception as e:  # keep showing the last good figures, with a banner
            err = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            if err != self.error:
                log.warning("dashboard: cannot read the database: %s", err)
            self.error = err
            if self.snapshot is None:
                return
            snap = self.snapshot
        version = snap.version() + (self.error or "")
        self.snapshot = snap
        if version != self.version:
            self.version = version
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def poke(self) -> None:
        self._wake.set()

    def wake_streams(self) -> None:
        """Open event streams look at their session now (a logout ends its stream at once)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def run(self) -> None:
        while not self.closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_s)
            self._wake.clear()
            await self.refresh()

    async def wait_change(self, timeout: float) -> None:
        ev = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout)

    def close(self) -> None:
        self.closing = True
        self._changed.set()
        self._wake.set()


class RequireLogin:
    """ASGI middleware: no route but the log-in page and static files without a session."""

    def __init__(self, app: ASGIApp, users: UserStore, sessions: LiveSessions) -> None:
        self.app = app
        self.users = users
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no WebSocket route exists; refuse any attempt
            await send({"type": "websocket.close", "code": 1008})
            return
        path: str = scope["path"]
        if path == PUBLIC_PATH or path.startswith(PUBLIC_PREFIX):
            await self.app(scope, receive, send)
            return
        user = session_user(self.users, self.sessions, scope.get("session") or {})
        if user is None:
            if path.startswith(DATA_PREFIXES):
                resp: Response = JSONResponse({"error": "login required"}, status_code=401)
            else:
                target = path + (
                    f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
                )
                resp = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            await resp(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Headers every answer carries: no framing, no caching of data, no referrer leaks."""

    HEADERS = [
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (
            b"content-security-policy",
            b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    ]
    HSTS = (b"strict-transport-security", b"max-age=31536000")

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.headers = self.HEADERS + ([self.HSTS] if https else [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += self.headers
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


class SameOriginPosts:
    """ASGI middleware for every request that changes something (all but GET and HEAD):
    refused when the browser says it comes from another site (`Sec-Fetch-Site`) or names
    another origin (`Origin`), which stops a page elsewhere from logging a browser in to
    an account of its choosing (log-in needs no session, so no CSRF token can guard it);
    and its body is limited to MAX_BODY, read or not (an unauthenticated client cannot make
    the server hold a huge log-in form in memory)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if not _same_origin(headers):
            resp = JSONResponse({"error": "cross-site request refused"}, status_code=403)
            await resp(scope, receive, send)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            await _too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _too_large(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    resp = JSONResponse({"error": "request body too large"}, status_code=413)
    resp.headers["connection"] = "close"
    await resp(scope, receive, send)


def _same_origin(headers: dict[str, str]) -> bool:
    """What the browser says about where the request comes from: `Sec-Fetch-Site` (every
    current browser; right behind a proxy too), else `Origin` against `Host`. A request
    with neither is not from a browser's form or script (the CSRF token still applies)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host", "").lower()
    return bool(host) and urlsplit(origin.lower()).netloc == host


def session_user(users: UserStore, sessions: LiveSessions, session: dict[str, Any]) -> User | None:
    """The session's user: the user still exists with the same password, and the session
    was not ended (logout) on this server."""
    user = users.session_user(session)
    if user is None or not sessions.alive(session.get("sid"), user.name):
        return None
    return user


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def create_app(settings: Settings) -> Starlette:
    hub = Hub(settings.data, settings.refresh_s)
    sessions = LiveSessions(settings.session_hours * 3600)
    throttle = LoginThrottle()
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    env.globals.update(pct_level=pct_level, response_level=response_level)
    env.filters.update(segment=_segment, css=_css)
    # The fragments are cached for every session; each page gets its own token put in place
    # of this mark, which device text cannot contain (it is random, made at start).
    csrf_mark = f"csrf-{secrets.token_hex(16)}"
    streams: dict[str, int] = {}  # session id -> open /events streams
    fragment_cache: dict[tuple[str, str], tuple[str, float, dict[str, str]]] = {}

    def lang_of(request: Request) -> str:
        asked = request.query_params.get("lang")
        if asked in LANGS:
            request.session["lang"] = asked
        lang = request.session.get("lang")
        return lang if lang in LANGS else "zh"

    def context(request: Request, lang: str, view: str, now: float) -> dict[str, Any]:
        user: User | None = getattr(request.state, "user", None)
        snap = hub.snapshot
        return {
            "t": Words(lang, settings.tz, now),
            "lang": lang,
            "other_lang": "en" if lang == "zh" else "zh",
            "view": view,
            "snap": snap,
            "error": hub.error,
            "user": user.name if user else None,
            "csrf": request.session.get("csrf", ""),
            "site_name": settings.site_name,
            "refresh_s": settings.refresh_s,
            "scale": snap.scale if snap else 4,
            "alert_days": settings.data.alert_days,
            "utc_offset_min": _utc_offset_min(settings.tz, now),
        }

    def fragments(request: Request, lang: str, view: str) -> dict[str, str]:
        """The page parts for this version, rendered once per language and view."""
        now = time.time()
        key = (lang, view)
        cached = fragment_cache.get(key)
        if cached and cached[0] == hub.version and now - cached[1] < RERENDER_S:
            return cached[2]
        ctx = context(request, lang, view, now)
        ctx["csrf"] = csrf_mark  # per-session value filled in below; the cache is shared
        out = {fid: env.get_template(name).render(ctx) for fid, name in FRAGMENTS[view].items()}
        fragment_cache[key] = (hub.version, now, out)
        return out

    def with_csrf(parts: dict[str, str], request: Request) -> dict[str, str]:
        token = str(request.session.get("csrf", ""))
        return {k: v.replace(csrf_mark, token) for k, v in parts.items()}

    def page(request: Request, template: str, view: str) -> HTMLResponse:
        lang = lang_of(request)
        ctx = context(request, lang, view, time.time())
        ctx["parts"] = with_csrf(fragments(request, lang, view), request)
        return HTMLResponse(env.get_template(template).render(ctx))

    async def console(request: Request) -> Response:
        return page(request, "console.html", "console")

    async def wall(request: Request) -> Response:
        return page(request, "wall.html", "wall")

    async def login_form(request: Request) -> Response:
        lang = lang_of(request)
        ctx = context(request, lang, "login", time.time())
        ctx.update(next=_safe_next(request.query_params.get("next")), failed=False, name="")
        return HTMLResponse(env.get_template("login.html").render(ctx))

    def login_page(
        request: Request, target: str, name: str, status: int, locked: int = 0
    ) -> HTMLResponse:
        ctx = context(request, lang_of(request), "login", time.time())
        ctx.update(next=target, failed=True, name=name, locked=locked)
        return HTMLResponse(env.get_template("login.html").render(ctx), status_code=status)

    async def login(request: Request) -> Response:
        form = await request.form()
        name = str(form.get("user") or "")[:64]
        password = str(form.get("password") or "")
        target = _safe_next(str(form.get("next") or "/"))
        addr = _client(request)
        wait = throttle.admit(name, addr)
        if wait > 0:
            log.warning("dashboard: log-in for %r from %s refused: locked out", name, addr)
            return login_page(request, target, name, 429, locked=max(1, round(wait)))
        user = None
        try:
            user = await anyio.to_thread.run_sync(settings.users.check, name, password)
        finally:
            throttle.done(name, addr, ok=user is not None)
        if user is None:
            log.warning("dashboard: failed log-in for %r from %s", name, addr)
            await asyncio.sleep(LOGIN_FAIL_DELAY_S)  # slows password guessing
            return login_page(request, target, name, 401)
        lang = request.session.get("lang")
        request.session.clear()
        request.session.update(
            user=user.name,
            fp=user.fingerprint,
            sid=sessions.start(user.name),
            csrf=secrets.token_urlsafe(24),
            lang=lang if lang in LANGS else "zh",
        )
        log.info("dashboard: %s logged in from %s", user.name, _client(request))
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not _csrf_ok(request, form.get("csrf")):
            return JSONResponse({"error": "bad or missing CSRF token"}, status_code=403)
        sessions.end(request.session.get("sid"))
        request.session.clear()
        hub.wake_streams()
        return RedirectResponse("/login", status_code=303)

    async def acknowledge(request: Request) -> Response:
        wants_json = "application/json" in request.headers.get("accept", "")
        form = await request.form()
        token = request.headers.get("x-csrf-token") or form.get("csrf")
        if not _csrf_ok(request, token):
            return JSONResponse({"error": "bad or missing CSRF token"}, status_code=403)
        user: User = request.state.user
        eid = request.path_params["event_id"]
        got = await anyio.to_thread.run_sync(settings.data.acknowledge, eid, user.name)
        if got is None:
            return JSONResponse({"error": f"no alert {eid}"}, status_code=404)
        log.info("dashboard: %s acknowledged alert %s", user.name, eid)
        await hub.refresh()
        if wants_json:
            return JSONResponse({"id": eid, "acked_by": got[0], "acked_at": got[1]})
        return RedirectResponse("/", status_code=303)

    async def state(request: Request) -> Response:
        snap = hub.snapshot
        body = snap.as_json() if snap else {}
        body["error"] = hub.error
        return JSONResponse(body)

    async def stream(request: Request) -> Response:
        lang = lang_of(request)
        view = request.query_params.get("view", "console")
        if view not in FRAGMENTS:
            view = "console"
        session = dict(request.session)
        sid = str(session.get("sid"))
        if streams.get(sid, 0) >= STREAMS_PER_SESSION:
            log.warning(
                "dashboard: %s has %d live streams open in one session: one more refused",
                request.state.user.name,
                STREAMS_PER_SESSION,
            )
            return JSONResponse({"error": "too many open live streams"}, status_code=429)

        async def events() -> AsyncIterator[str]:
            yield f"retry: {int(max(1.0, settings.refresh_s) * 1000)}\n\n"
            sent, sent_at = "", 0.0
            while not hub.closing:
                if session_user(settings.users, sessions, session) is None:
                    yield "event: logout\ndata: {}\n\n"
                    return
                if hub.version != sent or time.monotonic() - sent_at >= RERENDER_S:
                    sent, sent_at = hub.version, time.monotonic()
                    body = {
                        "version": sent,
                        "fragments": with_csrf(fragments(request, lang, view), request),
                    }
                    yield f"event: state\ndata: {json.dumps(body, ensure_ascii=False)}\n\n"
                await hub.wait_change(min(RERENDER_S, 15.0))

        return _CountedStream(
            streams,
            sid,
            events(),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.refresh()
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            hub.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [
        Route("/", console),
        Route("/wall", wall),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/events", stream),
        Route("/api/state", state),
        Route("/alerts/{event_id:path}/ack", acknowledge, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders, https=settings.https),
            Middleware(SameOriginPosts),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret,
                session_cookie="careterm_console",
                max_age=int(settings.session_hours * 3600),
                same_site="strict",
                https_only=settings.https,
            ),
            Middleware(RequireLogin, users=settings.users, sessions=sessions),
        ],
        lifespan=lifespan,
    )
    app.state.hub = hub
    return app


def _csrf_ok(request: Request, token: Any) -> bool:
    want = request.session.get("csrf")
    return isinstance(token, str) and isinstance(want, str) and secrets.compare_digest(token, want)


class _CountedStream(StreamingResponse):
    """A stream counted in `counts[key]` from now until it ends, however it ends."""

    def __init__(self, counts: dict[str, int], key: str, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.counts, self.key = counts, key
        counts[key] = counts.get(key, 0) + 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            left = self.counts.pop(self.key, 1) - 1
            if left > 0:
                self.counts[self.key] = left


def _shown(value: Any) -> Any:
    """Every `{{ value }}` of the templates: text without the characters UNSHOWN names."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return UNSHOWN.sub("\ufffd", value)
    return value


def _segment(value: object) -> str:
    """One URL path segment: `/` too is escaped, so an id like `../x` stays this alert's id."""
    return quote(str(value), safe="")


def _css(value: object) -> str:
    """A class-name part from data: one word of letters, digits, `_` and `-`."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(value))[:32]


def _utc_offset_min(tz: tzinfo | None, now: float) -> int:
    off = datetime.fromtimestamp(now, tz).astimezone(tz).utcoffset()
    return int(off.total_seconds() // 60) if off is not None else 0


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"
