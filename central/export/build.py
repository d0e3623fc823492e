"""Assemble an export: nodes with their rules' status and ledger facts, controls, waivers,
windows, incidents and erasure requests.  The result is plain JSON data (strings, numbers, lists, dicts)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence

from sqlalchemy import Connection, or_, select

from central.config import Retention
from central.db.schema import agents
from central.export import context, history, settled
from central.export.erasures import requests_during
from central.export.ledger_refs import cited_reports, head_at
from central.export.model import FORMAT, Request, iso
from central.export.retention_runs import runs_by_day
from central.retention.sweep import checkpoints
from evidence.controls import CONTROLS
from evidence.policy import Policy

SEVERITY = ("failing", "unknown", "stale", "passing")
"""Worst first: a node's status for a control is the worst of its rules for it."""


def _nodes(conn: Connection, req: Request) -> List[Mapping[Any, Any]]:
    query = (
        select(agents)
        .where(
            agents.c.enrolled_at <= req.end,
            or_(agents.c.revoked_at.is_(None), agents.c.revoked_at > req.first),
        )
        .order_by(agents.c.hostname, agents.c.id)
    )
    if req.tenant is not None:
        query = query.where(agents.c.tenant == req.tenant)
    return list(conn.execute(query).mappings().all())


def _change(c: history.Change) -> Dict[str, Any]:
    return {
        "at": iso(c.at),
        "from": c.from_status,
        "to": c.to_status,
        "message": c.message,
        "observed": c.observed,
        "report_id": c.report_id,
    }


def _accepted_by(
    node: Mapping[Any, Any], rule_id: str, waivers: Sequence[Mapping[Any, Any]], windows: Sequence[Mapping[Any, Any]]
) -> List[str]:
    """Ids of the waivers (for this rule) and windows (allowing it) that cover the node."""
    out = []
    for w in waivers:
        scope = {"agent_id": w["scope"]["agent_id"], "group_name": w["scope"]["group"], "tenant": w["scope"]["tenant"]}
        if w["rule_id"] == rule_id and context.covers(scope, node):
            out.append(f"waiver:{w['id']}")
    for w in windows:
        scope = {"agent_id": w["scope"]["agent_id"], "group_name": w["scope"]["group"], "tenant": w["scope"]["tenant"]}
        if rule_id in w["allows"] and context.covers(scope, node):
            out.append(f"window:{w['id']}")
    return out


def _rules(
    node: Mapping[Any, Any],
    at_end: Dict[str, history.Change],
    at_start: Optional[Dict[str, history.Change]],
    during: Dict[str, List[history.Change]],
    sections: Dict[str, Any],
) -> List[Dict[str, Any]]:
    names = set(at_end) | set(at_start or {}) | set(during)
    out = []
    for rule_id in sorted(names):
        now = at_end.get(rule_id)
        entry: Dict[str, Any] = {
            "rule_id": rule_id,
            "controls": history.controls_at_end(now, during.get(rule_id, [])),
            "status": now.to_status if now else "not_in_force",
            "since": iso(now.at) if now else None,
            "message": now.message if now else None,
            "observed": now.observed if now else None,
            "report_id": now.report_id if now else None,
            "accepted_by": _accepted_by(node, rule_id, sections["waivers"], sections["maintenance_windows"]),
        }
        if at_start is not None:
            first = at_start.get(rule_id)
            entry["status_at_start"] = first.to_status if first else "not_in_force"
            entry["changes"] = [_change(c) for c in during.get(rule_id, [])]
        out.append(entry)
    return out


def control_summary(nodes: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for control in CONTROLS.values():
        counts = dict.fromkeys((*SEVERITY, "accepted", "not_evaluated"), 0)
        rows = []
        for node in nodes:
            rules = [r for r in node["rules"] if control.id in r["controls"] and r["status"] in SEVERITY]
            if not rules:
                counts["not_evaluated"] += 1
                continue
            worst = min(rules, key=lambda r: SEVERITY.index(r["status"]))["status"]
            failing = [r for r in rules if r["status"] == "failing"]
            accepted = bool(failing) and all(r["accepted_by"] for r in failing)
            counts["accepted" if accepted else worst] += 1
            rows.append(
                {
                    "agent_id": node["id"],
                    "hostname": node["hostname"],
                    "status": "accepted" if accepted else worst,
                    "rules": {r["rule_id"]: r["status"] for r in rules},
                }
            )
        out.append(
            {
                "id": control.id,
                "title": control.title,
                "summary": control.summary,
                "iso27001": list(control.iso27001),
                "gdpr": list(control.gdpr),
                "counts": counts,
                "nodes": rows,
            }
        )
    return out


def build(
    conn: Connection,
    req: Request,
    policy: Optional[Policy] = None,
    retention: Optional[Retention] = None,
    now: Optional[datetime] = None,
) -> Dict[str, Any]:
    """The whole export of ``req`` as JSON-ready data, read in the caller's transaction.

    It ends no later than the centre has judged the reports it received (``scope`` says
    when it ends: see :mod:`central.export.settled`).  ``policy`` is not read: each rule's
    controls are those recorded with its changes (it stays for the callers that pass it).
    """
    req = settled.cap(req, settled.pending(conn, req.tenant))
    rows = _nodes(conn, req)
    ids = [r["id"] for r in rows]
    sections: Dict[str, Any] = {
        "waivers": context.waivers_in_force(conn, req, rows),
        "maintenance_windows": context.windows_in_force(conn, req, rows),
        "incidents": context.incidents_during(conn, req, ids),
        "erasures": requests_during(conn, req),
    }
    at_end = history.states_at(conn, ids, req.end)
    at_start = history.states_at(conn, ids, req.start) if req.start is not None else None
    during = history.changes_between(conn, ids, req.start, req.end) if req.start is not None else {}
    marks = checkpoints(conn, ids)
    nodes = []
    for row in rows:
        rules = _rules(
            row,
            at_end.get(row["id"], {}),
            None if at_start is None else at_start.get(row["id"], {}),
            during.get(row["id"], {}),
            sections,
        )
        ledger = head_at(conn, row["id"], req.end, marks.get(row["id"]))
        cited = {r["report_id"] for r in rules if r["report_id"]}
        cited |= {c["report_id"] for r in rules for c in r.get("changes", []) if c["report_id"]}
        node: Dict[str, Any] = {
            "id": row["id"],
            "hostname": row["hostname"],
            "tenant": row["tenant"],
            "group": row["group_name"],
            "labels": dict(row["labels"] or {}),
            "enrolled_at": iso(row["enrolled_at"]),
            "revoked_at": iso(context.as_of(req.end, row["revoked_at"])),
            "key_fingerprint": row["key_fingerprint"],
            "public_key": row["public_key"],
            "ledger": ledger,
        }
        if req.start is not None:
            node["ledger_at_start"] = head_at(conn, row["id"], req.start, marks.get(row["id"]))
        heads = [h["length"] for h in (ledger, node.get("ledger_at_start")) if h and h["length"]]
        node["rules"] = rules
        node["reports"] = cited_reports(conn, row["id"], cited, heads, req.with_evidence, marks.get(row["id"]))
        nodes.append(node)
    return {
        "format": FORMAT,
        "generated_at": iso(now or datetime.now(timezone.utc)),
        "scope": req.scope(),
        "centre": {
            "retention": retention.model_dump() if retention is not None else None,
            "retention_runs": runs_by_day(conn, req),
        },
        "controls": control_summary(nodes),
        "nodes": nodes,
        **sections,
    }
