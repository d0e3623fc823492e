"""API keys for scripts and people reading the API (shown once, stored hashed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import Connection, select, update

from central.db.schema import api_keys
from central.ids import new_id, new_secret, secret_hash

PREFIX = "tsk"


def create(conn: Connection, name: str, now: datetime, user_id: Optional[str] = None) -> Tuple[str, str]:
    """(key id, secret); the secret is not stored and cannot be shown again.

    A key with ``user_id`` acts as that person (their role and tenants); one without is an
    administrator's key for scripts that see every tenant.
    """
    if not name.strip() or len(name) > 128:
        raise ValueError("an API key needs a name of 1-128 characters (who or what uses it)")
    key_id, secret = new_id(), new_secret(PREFIX)
    conn.execute(
        api_keys.insert().values(id=key_id, name=name, key_hash=secret_hash(secret), created_at=now, user_id=user_id)
    )
    return key_id, secret


def check(conn: Connection, secret: str) -> Optional[Dict[str, Any]]:
    row = (
        conn.execute(
            select(api_keys).where(api_keys.c.key_hash == secret_hash(secret), api_keys.c.revoked_at.is_(None))
        )
        .mappings()
        .first()
    )
    return None if row is None else {"id": row["id"], "name": row["name"], "user_id": row["user_id"]}


def list_keys(conn: Connection) -> List[Dict[str, Any]]:
    rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).mappings()
    return [{k: v for k, v in r.items() if k != "key_hash"} for r in rows]


def revoke(conn: Connection, key_id: str, now: datetime) -> bool:
    done = conn.execute(
        update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(done.rowcount)
