"""What every dashboard route needs: the logged-in person (or a trip to /login), database work off
the event loop, and the role check answered as a page."""

from __future__ import annotations

from typing import Annotated, Any, Awaitable, Callable, Dict, Optional
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
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


class Forbidden(Exception):
    """Who may not see this page, with the page's title and the sentence saying why; the app renders
    every one as the 403 page (:func:`forbidden_page`), so routes need not check and return."""

    def __init__(self, who: Principal, title: str, message: str) -> None:
        super().__init__(message)
        self.who = who
        self.title = title
        self.message = message


async def forbidden_page(request: Request, err: Exception) -> Response:
    """The one handler of :class:`Forbidden`: the 403 page that says what is needed."""
    assert isinstance(err, Forbidden)
    return page(request, "error.html", err.who, 403, title=err.title, message=err.message)


def check_role(who: Principal, role: str) -> None:
    """Raise :class:`Forbidden` unless ``who`` has ``role``."""
    if not who.at_least(role):
        title = "Admins only" if role == "admin" else "Not allowed"
        raise Forbidden(who, title, f"This needs the {role} role; {who.username} is {who.role}.")


def check_every_tenant_admin(who: Principal, what: str) -> None:
    """Raise :class:`Forbidden` unless ``who`` is an admin of every tenant.

    People and the audit trail are theirs only: the trail names every tenant's nodes, waivers
    and people, and an admin of some tenants could otherwise grant themselves the rest (M10).
    """
    check_role(who, "admin")
    if who.tenants is not None:
        message = f"{what} needs an admin of every tenant; {who.username} is admin of some tenants only."
        raise Forbidden(who, "Admins of every tenant only", message)


def with_role(role: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the logged-in person, who must have ``role``."""

    async def dependency(request: Request) -> Principal:
        who = await person(request)
        check_role(who, role)
        return who

    return dependency


Operator = Annotated[Principal, Depends(with_role("operator"))]
Admin = Annotated[Principal, Depends(with_role("admin"))]


async def every_tenant_admin(request: Request) -> Principal:
    """A dependency: the logged-in person, an admin of every tenant (the audit trail)."""
    who = await person(request)
    check_every_tenant_admin(who, "The audit trail")
    return who


AuditReader = Annotated[Principal, Depends(every_tenant_admin)]


def check_session(who: Principal) -> None:
    """Accounts and keys are managed from a dashboard session, never with an API key."""
    if who.csrf is None:
        message = "Accounts and API keys are managed from a dashboard login, not with an API key."
        raise Forbidden(who, "Log in first", message)


async def in_session(request: Request) -> Principal:
    """A dependency: the person logged in to the dashboard (not an API key)."""
    who = await person(request)
    check_session(who)
    return who


async def people_admin(request: Request) -> Principal:
    """A dependency: people are managed by admins of every tenant, in a dashboard session."""
    who = await in_session(request)
    check_every_tenant_admin(who, "Managing people")
    return who


SessionPerson = Annotated[Principal, Depends(in_session)]
PeopleAdmin = Annotated[Principal, Depends(people_admin)]
