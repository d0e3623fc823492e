"""Logging in and out (a session cookie for the dashboard), and who am I."""

from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from central import audit
from central.api.refusals import refusals
from central.auth import sessions
from central.auth.deps import current
from central.auth.login import log_in, log_out, set_cookie
from central.clock import utcnow
from central.db.engine import write_tx
from central.request_refused import refuse

router = APIRouter(prefix="/api/v1", tags=["session"], responses=refusals(401, 403, 429))


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


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
