"""What every dashboard route needs: the logged-in person (or a trip to /login), database work off
the event loop, and the role check answered as a page."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from central.auth.deps import current
from central.auth.principal import Principal
from central.db.engine import read_tx, write_tx
from central.runtime.service import Centre
from central.web.render import page


def centre_of(request: Request) -> Centre:
    centre: Centre = request.app.state.centre
    return centre


async def person(request: Request) -> Principal:
    """The person behind the session cookie; anyone else is sent to the login page (303)."""
    found = await current(request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "log in first", headers={"Location": "/login?next=" + quote(target, safe="")})
    return found


async def read(request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    centre = centre_of(request)

    def work() -> Any:
        with read_tx(centre.engine) as conn:
            return fn(conn, *args, **kwargs)

    return await run_in_threadpool(work)


async def write(request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    centre = centre_of(request)

    def work() -> Any:
        with write_tx(centre.engine) as conn:
            return fn(conn, *args, **kwargs)

    return await run_in_threadpool(work)


def source(request: Request) -> Optional[str]:
    return request.client.host if request.client else None


def safe_next(target: Optional[str]) -> str:
    """Only a path on this site (never //elsewhere or a scheme): no open redirect after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def fields(request: Request) -> Dict[str, str]:
    """A form's text fields, each cut to 4,000 characters."""
    form = await request.form()
    return {k: str(v)[:4000] for k, v in form.items() if isinstance(v, str)}


def every_tenant_admin(request: Request, who: Principal, what: str) -> Optional[Response]:
    """None for an admin of every tenant; otherwise the 403 page saying ``what`` needs one.

    People and the audit trail are theirs only: the trail names every tenant's nodes, waivers
    and people, and an admin of some tenants could otherwise grant themselves the rest (M10).
    """
    refused = needs(request, who, "admin")
    if refused is None and who.tenants is not None:
        message = f"{what} needs an admin of every tenant; {who.username} is admin of some tenants only."
        return page(request, "error.html", who, 403, title="Admins of every tenant only", message=message)
    return refused


def needs(request: Request, who: Principal, role: str) -> Optional[Response]:
    """None when ``who`` has ``role``; otherwise the 403 page that says so."""
    if who.at_least(role):
        return None
    title = "Admins only" if role == "admin" else "Not allowed"
    message = f"This needs the {role} role; {who.username} is {who.role}."
    return page(request, "error.html", who, 403, title=title, message=message)
