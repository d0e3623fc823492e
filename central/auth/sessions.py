"""Dashboard sessions: a random token in a Secure, HttpOnly, SameSite=Strict cookie, stored hashed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import Connection, delete, select, update

from central.auth.principal import Principal
from central.auth.users import principal_of
from central.config import Sessions
from central.db.schema import sessions, users
from central.identifiers import secret_hash

COOKIE = "tillsyn_session"
REFRESH_COOKIE = "tillsyn_refresh"
"""Set for a few seconds by the dashboard's script just before it reloads a page by itself."""


@dataclass(frozen=True)
class Started:
    cookie: str
    csrf: str
    max_age_s: int


def start(conn: Connection, now: datetime, settings: Sessions, user_id: str, source: Optional[str]) -> Started:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute(
        sessions.insert().values(
            id_hash=secret_hash(token),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.max_hours),
            source=source,
        )
    )
    return Started(token, csrf, settings.max_hours * 3600)


def resume(conn: Connection, now: datetime, settings: Sessions, token: str, *, use: bool = True) -> Optional[Principal]:
    """The person behind a session cookie, or None when it is unknown, expired, idle or disabled.

    ``use`` false (a page reloading itself) does not count as use: a dashboard left open on a
    screen still ends ``idle_minutes`` after its last real use."""
    row = (
        conn.execute(
            select(sessions.c.id_hash, sessions.c.csrf_token, sessions.c.expires_at, sessions.c.last_seen_at, users)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id_hash == secret_hash(token))
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    idle_limit = row["last_seen_at"] + timedelta(minutes=settings.idle_minutes)
    if row["expires_at"] <= now or idle_limit <= now or row["disabled_at"] is not None:
        conn.execute(delete(sessions).where(sessions.c.id_hash == row["id_hash"]))
        return None
    if use and (now - row["last_seen_at"]).total_seconds() > 60:  # one write a minute at most
        conn.execute(update(sessions).where(sessions.c.id_hash == row["id_hash"]).values(last_seen_at=now))
    return principal_of(row, row["csrf_token"])


def end(conn: Connection, token: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.id_hash == secret_hash(token)))


def end_all(conn: Connection, user_id: str, keep: Optional[str] = None) -> None:
    """End every session of a person (after a password change), except the cookie ``keep``."""
    query = delete(sessions).where(sessions.c.user_id == user_id)
    if keep is not None:
        query = query.where(sessions.c.id_hash != secret_hash(keep))
    conn.execute(query)
