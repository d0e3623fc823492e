"""Every signed-in person's own page: their account, a new password (proved with the current one),
and personal API keys (created and shown once, listed, revoked); admins may revoke anyone's key.

Changes are recorded in the audit trail by central.auth.users and central.apikeys.
"""

from __future__ import annotations

from typing import Annotated, Any, Dict

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from central import apikeys
from central.auth import sessions, users
from central.auth.principal import Principal
from central.ids import utcnow
from central.web.common import centre_of, fields, person, read, safe_next, source, write
from central.web.people import session_only
from central.web.render import page, redirect

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(person)]


def _mine(conn: Connection, username: str) -> Dict[str, Any]:
    account = users.find(conn, username) or {}
    return {"account": account, "keys": apikeys.list_keys(conn, account.get("id") or "\x00none")}


async def _account(request: Request, who: Principal, status: int = 200, **extra: Any) -> Response:
    data = await read(request, _mine, who.username)
    return page(request, "account.html", who, status, no_refresh=True, **data, **extra)


@router.get("/account")
async def account(request: Request, who: Person) -> Response:
    return session_only(request, who) or await _account(request, who)


@router.post("/account/password")
async def change_password(request: Request, who: Person) -> Response:
    """A new password for oneself; every other session of the person ends, this one stays."""
    refused = session_only(request, who)
    if refused:
        return refused
    form = await fields(request)
    if form.get("new", "") != form.get("again", ""):
        return await _account(request, who, 400, error="The two new passwords differ; nothing was changed.")
    keep = request.cookies.get(sessions.COOKIE)
    current, new = form.get("current", ""), form.get("new", "")

    def work(conn: Connection, proof: users.PasswordProof, fresh: users.NewPassword) -> None:
        users.change_own_password(conn, utcnow(), who.username, proof, fresh, source(request))
        sessions.end_all(conn, users.user_id_of(conn, who.username), keep)

    try:
        wait, stored = await read(request, users.password_state, who.username, utcnow())
        if wait:
            raise users.UserError(users.locked_message(wait))
        # Argon2 (checking the current password, hashing the new one) before the write transaction
        proof = await run_in_threadpool(users.check, stored, current)
        if not proof.ok:
            settings = centre_of(request).config.sessions
            await write(request, users.wrong_current_password, utcnow(), settings, who.username, source(request))
            raise users.UserError("the current password is wrong; nothing was changed")
        if new == current:
            raise users.UserError("the new password is the same as the current one")
        await write(request, work, proof, await run_in_threadpool(users.NewPassword.of, new, who.username))
    except users.UserError as err:
        return await _account(request, who, 400, error=str(err))
    return await _account(request, who, notice="Your password was changed; your other sessions have ended.")


@router.post("/account/keys")
async def create_key(request: Request, who: Person) -> Response:
    """A personal key (acting with the person's role and tenants); its secret is shown on this answer only."""
    refused = session_only(request, who)
    if refused:
        return refused
    name = (await fields(request)).get("name", "")

    def work(conn: Connection) -> str:
        owner = users.user_id_of(conn, who.username)
        return apikeys.create(conn, name, utcnow(), owner, actor=who.actor, source=source(request))[1]

    try:
        secret = await write(request, work)
    except ValueError as err:
        return await _account(request, who, 400, error=str(err))
    return await _account(request, who, created={"name": name.strip(), "secret": secret})


@router.post("/account/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, who: Person) -> Response:
    """Revoke one's own key; an admin may revoke anyone's (the form says where to go back to)."""
    refused = session_only(request, who)
    if refused:
        return refused
    back = safe_next((await fields(request)).get("back") or "/account")

    def work(conn: Connection) -> bool:
        everyone = who.at_least("admin") and who.tenants is None  # as on the people pages
        owner = None if everyone else users.user_id_of(conn, who.username)
        return apikeys.revoke(conn, key_id, utcnow(), owner=owner, actor=who.actor, source=source(request))

    if not await write(request, work):
        message = f"There is no active API key {key_id!r} that you may revoke; nothing was changed."
        return page(request, "error.html", who, 404, title="Not revoked", message=message)
    return redirect(back)
