"""Logging in and out of the dashboard, and the few static assets it ships (no CDN, no inline code)."""

from __future__ import annotations

import hmac
import secrets
from typing import Optional

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from central import audit
from central.auth.deps import current
from central.auth.login import log_in, log_out, set_cookie
from central.auth.sessions import COOKIE
from central.clock import utcnow
from central.request_refused import RequestRefused
from central.web.common import centre_of, safe_next, source, write
from central.web.render import HERE, page, redirect, secure

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "tillsyn_login"
"""A pre-session token (double submit): a foreign site cannot log a browser into its own account."""
STATIC = {"style.css": "text/css", "refresh.js": "text/javascript"}


def _form(
    request: Request, error: Optional[str] = None, status: int = 200, username: str = "", target: str = ""
) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        None,
        status,
        error=error,
        token=token,
        username=username,
        next=safe_next(target or request.query_params.get("next")),
    )
    secure_cookie = centre_of(request).config.sessions.secure_cookie
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, secure=secure_cookie, samesite="strict")
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    if await current(request) is not None:
        return redirect(safe_next(request.query_params.get("next")))
    return _form(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username") or "")[:64]
    password = str(form.get("password") or "")[:1024]
    sent = str(form.get("login_token") or "")
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(sent, expected):
        return _form(request, "The login form expired: please try again.", 403, username, str(form.get("next") or ""))
    try:
        started = await run_in_threadpool(log_in, request, username, password)
    except RequestRefused as err:
        return _form(request, err.message, err.status, username, str(form.get("next") or ""))
    response = redirect(safe_next(str(form.get("next") or "/")))
    set_cookie(response, started, centre_of(request).config.sessions.secure_cookie)
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    person = await current(request)  # checks the form's CSRF token when a session cookie is sent
    await run_in_threadpool(log_out, request)
    if person is not None:
        await write(
            request,
            lambda conn: audit.record(conn, utcnow(), person.actor, "logout", person.username, None, source(request)),
        )
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, "no such file")
    response = FileResponse(HERE / "static" / name, media_type=STATIC[name])
    secure(response)
    response.headers["Cache-Control"] = "max-age=3600"
    return response
