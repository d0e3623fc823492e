"""Waivers, maintenance windows and incidents around an export's moment or period, as of its end."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence

from sqlalchemy import Connection, and_, or_, select

from central.db.schema import incident_events, incidents, maintenance_windows, waivers
from central.export.model import Request, iso
from evidence.model import parse_utc


def covers(row: Mapping[Any, Any], node: Mapping[Any, Any]) -> bool:
    """A waiver or window applies to a node when each scope it names matches (as the alerting does)."""
    return (
        (row["agent_id"] is None or row["agent_id"] == node["id"])
        and (row["group_name"] is None or row["group_name"] == node["group_name"])
        and (row["tenant"] is None or row["tenant"] == node["tenant"])
    )


def _relevant(rows: Sequence[Mapping[Any, Any]], nodes: Sequence[Mapping[Any, Any]]) -> List[Mapping[Any, Any]]:
    return [r for r in rows if any(covers(r, n) for n in nodes)]


def as_of(end: Any, later: Any) -> Any:
    """What was known at ``end``: a cancellation or revocation after it had not happened yet."""
    return later if later is not None and later <= end else None


def waivers_in_force(conn: Connection, req: Request, nodes: Sequence[Mapping[Any, Any]]) -> List[Dict[str, Any]]:
    """Waivers in force at some moment of the request (at its moment, or during its period)."""
    rows = (
        conn.execute(
            select(waivers)
            .where(
                waivers.c.created_at <= req.end,
                waivers.c.expires_at > req.first,
                or_(waivers.c.revoked_at.is_(None), waivers.c.revoked_at > req.first),
            )
            .order_by(waivers.c.created_at, waivers.c.id)
        )
        .mappings()
        .all()
    )
    return [
        {
            "id": w["id"],
            "rule_id": w["rule_id"],
            "scope": {"agent_id": w["agent_id"], "group": w["group_name"], "tenant": w["tenant"]},
            "justification": w["justification"],
            "approver": w["approver"],
            "created_by": w["created_by"],
            "created_at": iso(w["created_at"]),
            "expires_at": iso(w["expires_at"]),
            "revoked_at": iso(as_of(req.end, w["revoked_at"])),
            "revoked_by": w["revoked_by"] if as_of(req.end, w["revoked_at"]) else None,
        }
        for w in _relevant(rows, nodes)
    ]


def windows_in_force(conn: Connection, req: Request, nodes: Sequence[Mapping[Any, Any]]) -> List[Dict[str, Any]]:
    """Maintenance windows that were open at some moment of the request."""
    mw = maintenance_windows.c
    rows = (
        conn.execute(
            select(maintenance_windows)
            .where(
                mw.starts_at <= req.end,
                mw.ends_at > req.first,
                or_(mw.cancelled_at.is_(None), mw.cancelled_at > req.first),
                mw.created_at <= req.end,
            )
            .order_by(mw.starts_at, mw.id)
        )
        .mappings()
        .all()
    )
    return [
        {
            "id": w["id"],
            "scope": {"agent_id": w["agent_id"], "group": w["group_name"], "tenant": w["tenant"]},
            "starts_at": iso(w["starts_at"]),
            "ends_at": iso(w["ends_at"]),
            "allows": list(w["allows"] or []),
            "reason": w["reason"],
            "created_by": w["created_by"],
            "cancelled_at": iso(as_of(req.end, w["cancelled_at"])),
            "cancelled_by": w["cancelled_by"] if as_of(req.end, w["cancelled_at"]) else None,
        }
        for w in _relevant(rows, nodes)
    ]


def _timeline(conn: Connection, incident_ids: List[int], end: datetime) -> Dict[int, List[Dict[str, Any]]]:
    out: Dict[int, List[Dict[str, Any]]] = {i: [] for i in incident_ids}
    ev = incident_events.c
    for i in range(0, len(incident_ids), 500):
        rows = conn.execute(
            select(incident_events)
            .where(ev.incident_id.in_(incident_ids[i : i + 500]), ev.at <= end)
            .order_by(ev.incident_id, ev.at, ev.id)
        ).mappings()
        for e in rows:
            out[e["incident_id"]].append(
                {
                    "at": iso(e["at"]),
                    "kind": e["kind"],
                    "channel": e["channel"],
                    "actor": e["actor"],
                    "detail": e["detail"],
                }
            )
    return out


def _after(start: datetime, end: Optional[datetime]) -> Optional[float]:
    return None if end is None else round((end - start).total_seconds(), 1)


def incidents_during(conn: Connection, req: Request, agent_ids: Sequence[str]) -> List[Dict[str, Any]]:
    """Incidents open at some moment of the request, with their timelines up to its end."""
    ic = incidents.c
    found: List[Mapping[Any, Any]] = []
    for i in range(0, len(agent_ids), 500):
        found += (
            conn.execute(
                select(incidents).where(
                    ic.agent_id.in_(agent_ids[i : i + 500]),
                    ic.opened_at <= req.end,
                    or_(ic.resolved_at.is_(None), and_(ic.resolved_at >= req.first)),
                )
            )
            .mappings()
            .all()
        )
    found.sort(key=lambda r: (r["opened_at"], r["id"]))
    timelines = _timeline(conn, [int(r["id"]) for r in found], req.end)
    out = []
    for r in found:
        resolved = as_of(req.end, r["resolved_at"])
        acked = as_of(req.end, r["acknowledged_at"])
        timeline = timelines[int(r["id"])]
        # M12: detected -> first notified (the first trigger delivered) and -> acknowledged
        sent = [e["at"] for e in timeline if e["kind"] == "notified" and e["detail"] == "trigger sent"]
        first = parse_utc(sent[0]) if sent else None
        out.append(
            {
                "id": int(r["id"]),
                "agent_id": r["agent_id"],
                "rule_id": r["rule_id"],
                "kind": r["kind"],
                "status": "resolved" if resolved else "open",
                "severity": r["severity"],
                "title": r["title"],
                "message": r["message"],
                "controls": list(r["controls"] or []),
                "observed": r["observed"],
                "opened_at": iso(r["opened_at"]),
                "acknowledged_at": iso(acked),
                "acknowledged_by": r["acknowledged_by"] if acked else None,
                "resolved_at": iso(resolved),
                "first_notified_at": iso(first),
                "notified_after_s": _after(r["opened_at"], first),
                "acknowledged_after_s": _after(r["opened_at"], acked),
                "timeline": timeline,
            }
        )
    return out
