"""The retention rounds (M08) around an export, day by day, from the audit trail's ``retention.run``
entries: that retention ran and to which cut-offs.  A round deletes for the whole centre, so what
it deleted is counted only in an export of every tenant (a tenant's export would otherwise learn
the size of the others).  Informational: the audit trail itself expires (``audit_days``), so this
is not compared by ``export verify``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, select

from central.db.schema import audit_log
from central.export.model import Request, iso
from evidence.model import parse_utc

POINT_SPAN = timedelta(days=1)
"""An export of a moment shows the rounds of the day before it."""
_CUTOFFS = ("reports_before", "history_before", "audit_before")


def _cutoff(detail: Dict[str, Any], key: str) -> Optional[str]:
    value = detail.get(key)
    return iso(parse_utc(value)) if isinstance(value, str) else None


def _sentence(day: Dict[str, Any]) -> str:
    rounds = "1 round" if day["rounds"] == 1 else f"{day['rounds']} rounds"
    between = f"between {day['first_at'][11:16]} and {day['last_at'][11:16]} UTC"
    text = f"{rounds} of the centre's retention deleted data {between}"
    text += f"; the last deleted reports received before {day['reports_before'][:10]}" if day["reports_before"] else ""
    if day["deleted"] is not None:
        said = [f"{n} {what.replace('_', ' ')}" for what, n in day["deleted"].items() if n]
        text += " (in all: " + ", ".join(said) + ")" if said else ""
    return text


def runs_by_day(conn: Connection, req: Request) -> List[Dict[str, Any]]:
    """One entry per UTC day with rounds in the period (or the day before the moment)."""
    first = req.start if req.start is not None else req.end - POINT_SPAN
    a = audit_log.c
    rows = conn.execute(
        select(a.at, a.detail).where(a.action == "retention.run", a.at >= first, a.at <= req.end).order_by(a.at, a.id)
    ).all()
    days: Dict[str, Dict[str, Any]] = {}
    for at, recorded in rows:
        detail = recorded if isinstance(recorded, dict) else {}
        when = iso(at) or ""
        day = days.setdefault(when[:10], {"day": when[:10], "rounds": 0, "first_at": when, "deleted": {}})
        day["rounds"] += 1
        day["last_at"] = when
        day.update({k: _cutoff(detail, k) for k in _CUTOFFS})
        for key, value in detail.items():
            if key not in _CUTOFFS and isinstance(value, int):
                day["deleted"][key] = day["deleted"].get(key, 0) + value
    out = []
    for day in days.values():
        if req.tenant is not None:
            day["deleted"] = None
        day["message"] = _sentence(day)
        out.append(day)
    return out
