"""Logging in and out with a password: the session the API's ``/api/v1/session`` and the
dashboard's login form both start and end."""

from __future__ import annotations

from fastapi import Request, Response

from central import audit
from central.auth import sessions, users
from central.clock import utcnow
from central.db.engine import read_tx, write_tx
from central.request_refused import refuse


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
    """Check the password (throttled per address, audited) and start a session; raises RequestRefused.

    The same answers whether the account exists or not: 401 for a wrong password or name, and
    429 once this address made too many wrong logins for this name or for any (central/auth/throttle.py)."""
    centre = request.app.state.centre
    source = request.client.host if request.client else None
    held = centre.logins.held(source, username, utcnow())
    if held is not None:  # no Argon2 and no database write for a held address
        raise refuse(429, "login_refused", held.message, retry_after_s=held.retry_after_s)
    with read_tx(centre.engine) as conn:
        stored = users.stored_hash(conn, username)
    proof = users.check(stored, password)  # Argon2 with no lock held (on SQLite the write lock holds up ingest)
    with write_tx(centre.engine) as conn:
        now = utcnow()
        try:
            logged_in = users.login(conn, now, username, password, source, proof)
        except users.LoginRefused as err:
            refused = err
            if centre.logins.failed(source, username, now):
                minutes = centre.config.sessions.lockout_minutes
                detail = {"address": source, "minutes": minutes}
                audit.record(conn, now, f"address:{source}", "login.locked", username[:160], detail, source)
        else:
            centre.logins.succeeded(source, username)
            return sessions.start(conn, now, centre.config.sessions, logged_in.user_id, source)
    # outside the transaction, so the failed attempt (and a hold) stays recorded
    raise refuse(401, "login_refused", str(refused))


def log_out(request: Request) -> None:
    token = request.cookies.get(sessions.COOKIE)
    if not token:
        return
    centre = request.app.state.centre
    with write_tx(centre.engine) as conn:
        sessions.end(conn, token)
