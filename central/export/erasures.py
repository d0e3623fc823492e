"""Erasure requests (M08, GDPR Art. 17) around an export's moment or period, as of its end: what
was erased, on whose request and when.  A node's M08 finding changes only when its status does,
so a request carried out on a node whose M08 was passing shows here and nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Mapping

from sqlalchemy import Connection, or_, select

from central.db.schema import agents, erasures
from central.export.context import as_of
from central.export.model import Request, iso


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def state(requested_at: datetime, due_at: datetime, erased_at: Any, end: datetime) -> tuple[str, str]:
    """The request's status at ``end`` as a word for programs and a sentence for people."""
    due = f"{due_at:%Y-%m-%d}"
    if erased_at is not None:
        took = (erased_at - requested_at).days
        after = "the day of the request" if took < 1 else f"{_days(took)} after the request"
        late = f", {_days(max((erased_at - due_at).days, 1))} after it was due {due}" if erased_at > due_at else ""
        return "carried_out", f"carried out on {erased_at:%Y-%m-%d}, {after}{late}"
    if end > due_at:
        return "overdue", f"overdue since {due}, not carried out by {end:%Y-%m-%d}"
    return "open", f"open, due {due}"


def _entry(r: Mapping[Any, Any], end: datetime) -> Dict[str, Any]:
    erased = as_of(end, r["erased_at"])
    status, message = state(r["requested_at"], r["due_at"], erased, end)
    return {
        "id": r["id"],
        "agent_id": r["agent_id"],
        "hostname": r["hostname"],
        "reference": r["reference"],
        "requested_at": iso(r["requested_at"]),
        "due_at": iso(r["due_at"]),
        "recorded_at": iso(r["recorded_at"]),
        "recorded_by": r["recorded_by"],
        "erased_at": iso(erased),
        "erased_by": r["erased_by"] if erased else None,
        "reports": r["reports"] if erased else None,
        "erased_values": r["erased_values"] if erased else None,
        "status": status,
        "message": message,
    }


def requests_during(conn: Connection, req: Request) -> List[Dict[str, Any]]:
    """For a period: the requests recorded by its end and not carried out before its start (those
    recorded, open or carried out in it); for a moment: every request recorded by then.  Only
    the requests of the export's tenant's nodes."""
    e = erasures.c
    query = (
        select(erasures, agents.c.hostname)
        .join(agents, agents.c.id == e.agent_id)
        .where(e.recorded_at <= req.end)
        .order_by(e.requested_at, e.reference)
    )
    if req.start is not None:
        query = query.where(or_(e.erased_at.is_(None), e.erased_at >= req.start))
    if req.tenant is not None:
        query = query.where(agents.c.tenant == req.tenant)
    return [_entry(r, req.end) for r in conn.execute(query).mappings().all()]
