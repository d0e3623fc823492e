"""The audit trail: who changed what, when, from where (append-only through the product)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, select

from central.db.schema import audit_log


def record(
    conn: Connection,
    now: datetime,
    actor: str,
    action: str,
    obj: Optional[str] = None,
    detail: Optional[Dict[str, Any]] = None,
    source: Optional[str] = None,
) -> None:
    conn.execute(
        audit_log.insert().values(
            at=now,
            actor=actor[:128],
            action=action[:64],
            object=None if obj is None else obj[:160],
            detail=detail,
            source=None if source is None else source[:128],
        )
    )


def entries(conn: Connection, limit: int = 1000, before: Optional[int] = None) -> List[Dict[str, Any]]:
    """The newest ``limit`` entries, newest first; only those older than entry ``before`` when given
    (the next page of a walk through the whole trail)."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    return [dict(r) for r in conn.execute(query).mappings()]
