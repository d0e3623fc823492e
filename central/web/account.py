"""Every signed-in person's own page: their account, a new password (proved with the current one),
and personal API keys (created and shown once, listed, revoked); admins may revoke anyone's key.

Changes are recorded in the audit trail by central.auth.users and central.auth.apikeys.
"""

from __future__ import annotations

from typing import Any, Dict

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from central.auth import apikeys, sessions, users
from central.auth.principal import Principal
from central.clock import utcnow
from central.identifiers import new_id
from central.web.common import SessionPerson, centre_of, fields, read, safe_next, source, write
from central.web.render import page, redirect, when

router = APIRouter(include_in_schema=False)


def _mine(conn: Connection, username: str) -> Dict[str, Any]:
    account = users.find(conn, username) or {}
    return {"account": account, "keys": apikeys.list_keys(conn, account.get("id") or "\x00none")}


async def _account(request: Request, who: Principal, status: int = 200, **extra: Any) -> Response:
    data = await read(request, _mine, who.username)
    # the id the next key gets: the create form carries it, so a form sent twice makes one key
    return page(request, "account.html", who, status, no_refresh=True, key_id=new_id(), **data, **extra)


DONE = {"password": "Your password was changed; your other sessions have ended."}
"""What a form answered by a redirect did, by the ``done`` it names (a fixed text, never echoed input)."""


@router.get("/account")
async def account(request: Request, who: SessionPerson, done: str = "") -> Response:
    return await _account(request, who, notice=DONE.get(done))


@router.post("/account/password")
async def change_password(request: Request, who: SessionPerson) -> Response:
    """A new password for oneself; every other session of the person ends, this one stays."""
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
    # answered by a redirect: reloading the page then sends no form again (which would be
    # refused as a wrong current password, and counted towards a lockout)
    return redirect("/account?done=password")


_OUT_OF_DATE = "This form is out of date; nothing was changed. Use the form below."


class _SentBefore(Exception):
    """The form's key id is taken: the form was sent before (by reload, back button or a double click)."""


def _sent_before(key: Dict[str, Any], owner: str) -> str:
    if key["user_id"] != owner:
        return "This form's key id is already taken; nothing was changed. Use the form below."
    return (
        f"This form was already sent: it created the API key {key['name']!r} at {when(key['created_at'])}, listed "
        "below, and its secret was shown only on that answer. Nothing was changed. If you did not copy the secret, "
        "revoke that key and create another."
    )


@router.post("/account/keys")
async def create_key(request: Request, who: SessionPerson) -> Response:
    """A personal key (acting with the person's role and tenants); its secret is shown on this answer only.

    The form carries the id the key is to get, minted with the page: sending it again (reloading
    the answer, going back, a double click) finds that key and makes no second one.
    """
    form = await fields(request)
    key_id = form.get("key_id", "")
    if not apikeys.KEY_ID.fullmatch(key_id):
        return await _account(request, who, 400, error=_OUT_OF_DATE)

    def work(conn: Connection) -> str:
        owner = users.user_id_of(conn, who.username)
        key = apikeys.find(conn, key_id)
        if key is not None:
            raise _SentBefore(_sent_before(key, owner))
        name, now = form.get("name", ""), utcnow()
        return apikeys.create(conn, name, now, owner, actor=who.actor, source=source(request), key_id=key_id)[1]

    try:
        secret = await write(request, work)
    except ValueError as err:
        return await _account(request, who, 400, error=str(err))
    except _SentBefore as err:
        return await _account(request, who, 409, error=str(err))
    except IntegrityError:  # the same form sent twice at once: the other answer made the key
        key = await read(request, apikeys.find, key_id)
        owner = await read(request, users.user_id_of, who.username)
        return await _account(request, who, 409, error=_sent_before(key, owner) if key else "Nothing was changed.")
    return await _account(request, who, created={"name": form.get("name", "").strip(), "secret": secret})


@router.post("/account/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, who: SessionPerson) -> Response:
    """Revoke one's own key; an admin may revoke anyone's (the form says where to go back to)."""
    back = safe_next((await fields(request)).get("back") or "/account")

    def work(conn: Connection) -> bool:
        everyone = who.at_least("admin") and who.tenants is None  # as on the people pages
        owner = None if everyone else users.user_id_of(conn, who.username)
        return apikeys.revoke(conn, key_id, utcnow(), owner=owner, actor=who.actor, source=source(request))

    if not await write(request, work):
        message = f"There is no active API key {key_id!r} that you may revoke; nothing was changed."
        return page(request, "error.html", who, 404, title="Not revoked", message=message)
    return redirect(back)
