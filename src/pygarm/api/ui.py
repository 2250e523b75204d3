"""The live dashboard at ``/ui/`` (docs/dashboard.md): a login form, a session cookie, and static assets.

The page is plain HTML, CSS and JavaScript shipped in the package (``api/ui_assets/``, no build step). It
logs in with the pygarm user through a form: ``POST /ui/login`` checks the password like
``POST /api/v1/auth/login`` (the same authenticator, rate limit included) and puts the JWT in an
``HttpOnly``, ``SameSite=Strict`` cookie. :func:`session_token` lets that cookie stand in for the
``Authorization`` header, but only on the events and logs websockets (whose handshake already refuses a
foreign ``Origin``) and on safe REST methods; a request with an ``Authorization`` header is judged by the
header alone, exactly as in GARM.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from starlette.requests import HTTPConnection
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from pygarm.api.ws_events import is_same_origin
from pygarm.errors import UnauthorizedError

SESSION_COOKIE: Final = "pygarm_session"
UI_PREFIX: Final = "/ui"
LOGIN_BODY_LIMIT: Final = 4096
"""A login form is a user name and a password; more is not a login."""
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
ASSETS: Final = Path(str(files("pygarm.api") / "ui_assets"))


def session_token(conn: HTTPConnection) -> str | None:
    """The dashboard's cookie, where it may stand in for ``Authorization: Bearer``: websocket handshakes
    and safe methods, same origin only (browsers send ``Origin`` on websockets and cross-origin fetches)."""
    token = conn.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if conn.scope["type"] == "http" and conn.scope.get("method") not in SAFE_METHODS:
        return None
    return token if is_same_origin(conn.headers) else None


def _page(name: str) -> FileResponse:
    response = FileResponse(ASSETS / name, media_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    )
    return response


async def _signed_in(request: Request) -> bool:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return False
    try:
        await request.app.state.ctx.auth.authenticate(token)
    except UnauthorizedError:
        return False
    return True


async def index(request: Request) -> Response:
    """The dashboard for a signed-in browser, the login form otherwise."""
    return _page("index.html" if await _signed_in(request) else "login.html")


async def login(request: Request) -> Response:
    if not is_same_origin(request.headers):
        return PlainTextResponse("Forbidden\n", status_code=403)
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > LOGIN_BODY_LIMIT:
        return PlainTextResponse("a login form is at most 4 KiB\n", status_code=413)
    body = await request.body()
    form = parse_qs(body[:LOGIN_BODY_LIMIT].decode("utf-8", "replace"), max_num_fields=4)
    username = (form.get("username") or [""])[0]
    password = (form.get("password") or [""])[0]
    ctx = request.app.state.ctx
    try:
        token = await ctx.auth.login(
            username, password, address=request.client.host if request.client else ""
        )
    except UnauthorizedError:
        return RedirectResponse(UI_PREFIX + "/?failed=1", status_code=303)
    response = RedirectResponse(UI_PREFIX + "/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx.auth.tokens.ttl_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=ctx.settings.apiserver.use_tls,
    )
    return response


async def logout(request: Request) -> Response:
    if not is_same_origin(request.headers):
        return PlainTextResponse("Forbidden\n", status_code=403)
    response = RedirectResponse(UI_PREFIX + "/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def to_index(_request: Request) -> Response:
    return RedirectResponse(UI_PREFIX + "/", status_code=307)


def mount(app: FastAPI) -> None:
    """Add the dashboard's routes; none of them is part of the OpenAPI document (they are not GARM's)."""
    app.add_route(UI_PREFIX, to_index, methods=["GET"], include_in_schema=False)
    app.add_route(UI_PREFIX + "/", index, methods=["GET"], include_in_schema=False)
    app.add_route(UI_PREFIX + "/login", login, methods=["POST"], include_in_schema=False)
    app.add_route(UI_PREFIX + "/logout", logout, methods=["POST"], include_in_schema=False)
    app.mount(UI_PREFIX + "/assets", StaticFiles(directory=ASSETS), name="ui-assets")
