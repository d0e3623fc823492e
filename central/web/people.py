"""People for admins: accounts with role, tenants, last login and state; create, change, disable,
reset a password, and every API key of everyone (M05, M09).

Every change goes through central.auth.users and central.auth.apikeys, which record it in the audit
trail with the admin and their address; a refusal re-renders the page with the reason and
changes nothing (the transaction is rolled back).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from central.auth import apikeys, sessions, users
from central.auth.passwords import generate
from central.auth.principal import ROLES, Principal
from central.clock import utcnow
from central.web.common import PeopleAdmin, fields, read, source, write
from central.web.render import page, redirect

router = APIRouter(include_in_schema=False)


def _everyone(conn: Connection) -> Dict[str, Any]:
    return {"accounts": users.list_users(conn), "keys": apikeys.list_keys(conn)}


def _one(conn: Connection, username: str) -> Optional[Dict[str, Any]]:
    account = users.find(conn, username)
    if account is not None:
        account["keys"] = apikeys.list_keys(conn, account["id"])
        account["password_stamp"] = users.password_stamp(conn, username)  # the reset form carries it
    return account


async def _people(request: Request, who: Principal, status: int = 200, **extra: Any) -> Response:
    data = await read(request, _everyone)
    return page(request, "people.html", who, status, roles=ROLES, now=utcnow(), no_refresh=True, **data, **extra)


async def _person(request: Request, who: Principal, username: str, status: int = 200, **extra: Any) -> Response:
    account = await read(request, _one, username)
    if account is None:
        return page(request, "error.html", who, 404, title="Not found", message=f"There is no account {username!r}.")
    return page(
        request, "person.html", who, status, account=account, roles=ROLES, now=utcnow(), no_refresh=True, **extra
    )


@router.get("/admin/people")
async def people(request: Request, who: PeopleAdmin) -> Response:
    return await _people(request, who)


@router.post("/admin/people")
async def create(request: Request, who: PeopleAdmin) -> Response:
    form = await fields(request)
    username = form.get("username", "").strip()[:64]
    password = form.get("password", "") or generate(username)

    def work(conn: Connection, hashed: users.NewPassword) -> None:
        tenants = users.parse_tenants(form.get("tenants", ""))
        name = form.get("display_name", "").strip()[:128] or None
        role = form.get("role", "")
        users.create(conn, utcnow(), who.actor, username, hashed, role, tenants, name, source(request))

    try:  # Argon2 before the write transaction, which on SQLite holds up every other writer
        await write(request, work, await run_in_threadpool(users.NewPassword.of, password, username))
    except users.UserError as err:
        return await _people(request, who, 400, error=str(err), form=form)
    shown = None if form.get("password") else password
    return await _people(request, who, created={"username": username, "password": shown})


@router.get("/admin/people/{username}")
async def one(request: Request, username: str, who: PeopleAdmin) -> Response:
    return await _person(request, who, username)


async def _change(request: Request, who: Principal, username: str, **change: Any) -> Response:
    """``who`` is a people admin (the routes' dependency)."""

    def work(conn: Connection) -> None:
        users.change(conn, utcnow(), who.actor, username, source=source(request), **change)

    try:
        await write(request, work)
    except users.UserError as err:
        return await _person(request, who, username, 400, error=str(err))
    return redirect(f"/admin/people/{username}")


@router.post("/admin/people/{username}")
async def change_grant(request: Request, username: str, who: PeopleAdmin) -> Response:
    form = await fields(request)
    role = form.get("role") or None
    return await _change(request, who, username, role=role, tenants=users.parse_tenants(form.get("tenants", "")))


@router.post("/admin/people/{username}/disable")
async def disable(request: Request, username: str, who: PeopleAdmin) -> Response:
    return await _change(request, who, username, disabled=True)


@router.post("/admin/people/{username}/enable")
async def enable(request: Request, username: str, who: PeopleAdmin) -> Response:
    return await _change(request, who, username, disabled=False)


class _Resent(users.UserError):
    """A reset form whose password has changed since it was shown: it was sent before."""


@router.post("/admin/people/{username}/password")
async def reset_password(request: Request, username: str, who: PeopleAdmin) -> Response:
    """A new password set by an admin (typed, or generated and shown once); the person's sessions end.

    The form carries the stamp of the password it replaces: sent again (a reload of the answer
    that showed a generated password, going back, a double click), it finds the password changed
    and resets nothing, so the password just handed over stays the one that works.
    """
    form = await fields(request)
    typed = form.get("password", "")
    password = typed or generate(username)

    keep = request.cookies.get(sessions.COOKIE) if username == who.username else None

    def work(conn: Connection, hashed: users.NewPassword) -> None:
        current = users.password_stamp(conn, username)  # None: no such account, which change() says
        if current is not None and current != form.get("stamp"):
            raise _Resent(
                f"The password of {username} was changed after this form was shown (sending the form again "
                "does that); nothing was changed. Use the form below to reset it again."
            )
        users.change(conn, utcnow(), who.actor, username, password=hashed, source=source(request))
        sessions.end_all(conn, users.user_id_of(conn, username), keep)

    try:  # Argon2 before the write transaction
        await write(request, work, await run_in_threadpool(users.NewPassword.of, password, username))
    except _Resent as err:
        return await _person(request, who, username, 409, error=str(err))
    except users.UserError as err:
        return await _person(request, who, username, 400, error=str(err))
    return await _person(request, who, username, reset={"password": None if typed else password})
