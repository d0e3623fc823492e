"""API keys for scripts and people reading the API (shown once, stored hashed).

Creating and revoking a key is recorded in the audit trail when the caller names who did it
(``actor``): the dashboard and the CLI always do.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import Connection, select, update

from central import audit
from central.db.schema import api_keys, users
from central.identifiers import new_id, new_secret, secret_hash

PREFIX = "tsk"
KEY_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}")
"""What :func:`central.identifiers.new_id` makes: a form may carry the id its key is to get."""


def _owner_name(conn: Connection, user_id: Optional[str]) -> Optional[str]:
    if user_id is None:
        return None
    row = conn.execute(select(users.c.username).where(users.c.id == user_id)).first()
    return None if row is None else str(row.username)


def create(
    conn: Connection,
    name: str,
    now: datetime,
    user_id: Optional[str] = None,
    *,
    actor: Optional[str] = None,
    source: Optional[str] = None,
    key_id: Optional[str] = None,
) -> Tuple[str, str]:
    """(key id, secret); the secret is not stored and cannot be shown again.

    A key with ``user_id`` acts as that person (their role and tenants); one without is an
    administrator's key for scripts that see every tenant.  ``key_id``, when given, is the id
    the key gets (a form minted it, so that sending the form twice cannot make two keys); the
    caller has checked that no key has it, and the primary key refuses a second one regardless.
    """
    name = name.strip()
    if not name or len(name) > 128:
        raise ValueError("an API key needs a name of 1-128 characters (who or what uses it)")
    if key_id is not None and not KEY_ID.fullmatch(key_id):
        raise ValueError("an API key's id is 22 URL-safe characters")
    key_id, secret = key_id or new_id(), new_secret(PREFIX)
    conn.execute(
        api_keys.insert().values(id=key_id, name=name, key_hash=secret_hash(secret), created_at=now, user_id=user_id)
    )
    if actor is not None:
        detail = {"id": key_id, "user": _owner_name(conn, user_id)}
        audit.record(conn, now, actor, "apikey.create", name, detail, source)
    return key_id, secret


def find(conn: Connection, key_id: str) -> Optional[Dict[str, Any]]:
    """A key by its id (revoked or not), never its hash; None when no key has it."""
    row = conn.execute(
        select(api_keys.c.id, api_keys.c.name, api_keys.c.user_id, api_keys.c.created_at, api_keys.c.revoked_at).where(
            api_keys.c.id == key_id
        )
    ).first()
    return None if row is None else dict(row._mapping)


def check(conn: Connection, secret: str) -> Optional[Dict[str, Any]]:
    row = (
        conn.execute(
            select(api_keys).where(api_keys.c.key_hash == secret_hash(secret), api_keys.c.revoked_at.is_(None))
        )
        .mappings()
        .first()
    )
    return None if row is None else {"id": row["id"], "name": row["name"], "user_id": row["user_id"]}


def list_keys(conn: Connection, user_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every key (never its hash) with its owner's ``username``; only ``user_id``'s keys when given."""
    query = (
        select(api_keys, users.c.username)
        .outerjoin(users, users.c.id == api_keys.c.user_id)
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    return [{k: v for k, v in r.items() if k != "key_hash"} for r in conn.execute(query).mappings()]


def revoke(
    conn: Connection,
    key_id: str,
    now: datetime,
    *,
    owner: Optional[str] = None,
    actor: Optional[str] = None,
    source: Optional[str] = None,
) -> bool:
    """Revoke an active key (only one of user ``owner``'s when given); False when there is none."""
    where = [api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)]
    if owner is not None:
        where.append(api_keys.c.user_id == owner)
    row = conn.execute(select(api_keys.c.name, api_keys.c.user_id).where(*where)).first()
    if row is None:
        return False
    conn.execute(update(api_keys).where(*where).values(revoked_at=now))
    if actor is not None:
        detail = {"id": key_id, "user": _owner_name(conn, row.user_id)}
        audit.record(conn, now, actor, "apikey.revoke", row.name, detail, source)
    return True
