"""Logging in and out (a session cookie for the dashboard), and who am I."""

from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from central import audit
from central.auth import sessions, users
from central.auth.deps import current
from central.clock import utcnow
from central.db.engine import read_tx, write_tx
from central.errors import refuse

router = APIRouter(prefix="/api/v1", tags=["session"])


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


def set_cookie(response: Response, started: sessions.Started, secure: bool) -> None:
    response.set_cookie(
        sessions.COOKIE,
        started.cookie,
        max_age=started.max_age_s,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )


def log_in(request: Request, username: str, password: str) -> sessions.Started:
    """Check the password (throttled, audited) and start a session; raises RequestRefused."""
    centre = request.app.state.centre
    source = request.client.host if request.client else None
    with read_tx(centre.engine) as conn:
        stored = users.stored_hash(conn, username)
    proof = users.check(stored, password)  # Argon2 with no lock held (on SQLite the write lock holds up ingest)
    with write_tx(centre.engine) as conn:
        now = utcnow()
        try:
            logged_in = users.login(conn, now, centre.config.sessions, username, password, source, proof)
        except users.LoginRefused as err:
            refused = err
        else:
            return sessions.start(conn, now, centre.config.sessions, logged_in.user_id, source)
    # outside the transaction, so the failed attempt (and a lockout) stays recorded
    if refused.retry_after_s:
        raise refuse(429, "login_refused", str(refused), retry_after_s=refused.retry_after_s)
    raise refuse(401, "login_refused", str(refused))


def log_out(request: Request) -> None:
    token = request.cookies.get(sessions.COOKIE)
    if not token:
        return
    centre = request.app.state.centre
    with write_tx(centre.engine) as conn:
        sessions.end(conn, token)


@router.post("/session", summary="Log in: sets the session cookie; answers the CSRF token for forms")
async def login(request: Request, body: LoginBody, response: Response) -> Dict[str, Any]:
    started = await run_in_threadpool(log_in, request, body.username, body.password)
    set_cookie(response, started, request.app.state.centre.config.sessions.secure_cookie)
    return {"ok": True, "csrf_token": started.csrf}


@router.delete("/session", summary="Log out")
async def logout(request: Request, response: Response) -> Dict[str, Any]:
    person = await current(request)  # a logout with a cookie needs its CSRF token too
    await run_in_threadpool(log_out, request)
    if person is not None:
        centre = request.app.state.centre

        def record() -> None:
            with write_tx(centre.engine) as conn:
                audit.record(
                    conn,
                    utcnow(),
                    person.actor,
                    "logout",
                    person.username,
                    None,
                    request.client.host if request.client else None,
                )

        await run_in_threadpool(record)
    response.delete_cookie(sessions.COOKIE, path="/")
    return {"ok": True}


@router.get("/session", summary="Who is logged in (or whose API key this is)")
async def whoami(request: Request) -> Dict[str, Optional[Any]]:
    person = await current(request)
    if person is None:
        raise refuse(401, "unauthenticated", "not logged in")
    return {
        "username": person.username,
        "role": person.role,
        "actor": person.actor,
        "tenants": None if person.tenants is None else sorted(person.tenants),
    }
