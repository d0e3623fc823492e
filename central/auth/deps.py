"""FastAPI dependencies: who is asking (API key or dashboard session), role checks, CSRF."""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, Optional

from fastapi import Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from central.auth import apikeys
from central.auth.principal import Principal
from central.auth.sessions import COOKIE, REFRESH_COOKIE, resume
from central.auth.users import principal_of
from central.clock import utcnow
from central.db.engine import read_tx, write_tx
from central.db.schema import users
from central.request_refused import refuse

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _centre(request: Request) -> Any:
    return request.app.state.centre


def _from_key(centre: Any, secret: str) -> Optional[Principal]:
    with read_tx(centre.engine) as conn:
        key = apikeys.check(conn, secret)
        if key is None:
            return None
        if key["user_id"] is None:
            return Principal(f"apikey:{key['name']}", "admin", None, f"apikey:{key['name']}")
        row = conn.execute(select(users).where(users.c.id == key["user_id"])).mappings().first()
        if row is None or row["disabled_at"] is not None:
            return None
        person = principal_of(row)
        return Principal(person.username, person.role, person.tenants, f"user:{person.username} (apikey:{key['name']})")


def _from_session(centre: Any, token: str, use: bool) -> Optional[Principal]:
    with write_tx(centre.engine) as conn:
        return resume(conn, utcnow(), centre.config.sessions, token, use=use)


async def current(request: Request) -> Optional[Principal]:
    """The caller, from ``Authorization: Bearer`` or the session cookie; None when there is neither."""
    centre = _centre(request)
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        person = await run_in_threadpool(_from_key, centre, secret.strip())
        if person is None:
            raise refuse(
                401,
                "unauthenticated",
                "unknown or revoked API key",
                "ask an admin for a key (tillsyn-central apikey create NAME); a revoked key cannot be restored",
            )
        return person
    token = request.cookies.get(COOKIE)
    if token:
        # refresh.js marks the reloads it makes: they are not use, and do not keep a session alive
        person = await run_in_threadpool(_from_session, centre, token, REFRESH_COOKIE not in request.cookies)
        if person is not None and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent and request.headers.get("content-type", "").startswith(FORM_TYPES):
                sent = str((await request.form()).get("csrf_token") or "")
            _check_csrf(sent, person)
        return person
    return None


def _check_csrf(sent: str, person: Principal) -> None:
    """Every state change made with a session cookie carries the session's CSRF token
    (header ``X-CSRF-Token``, or the form field ``csrf_token``); SameSite=Strict is the second line."""
    if not person.csrf or not hmac.compare_digest(sent, person.csrf):
        raise refuse(403, "csrf", "missing or wrong CSRF token: reload the page and try again")


async def principal(request: Request) -> Principal:
    person = await current(request)
    if person is None:
        raise refuse(
            401,
            "unauthenticated",
            "send 'Authorization: Bearer <API key>'",
            "create a key with: tillsyn-central apikey create NAME",
        )
    return person


def require(role: str) -> Callable[[Request], Awaitable[Principal]]:
    async def dependency(request: Request) -> Principal:
        person = await principal(request)
        if not person.at_least(role):
            raise refuse(403, "forbidden", f"this needs the {role} role; {person.username} is {person.role}")
        return person

    return dependency
