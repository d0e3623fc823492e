"""One duty round's judging of the centre's own measures: read what they are judged from, record
each node's verdicts as findings (written only when one changes, like the rules' verdicts)."""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Dict, List, Sequence, Tuple

from sqlalchemy import Connection, func, or_, select

from central.db.id_lists import in_lists
from central.db.schema import agents, duty_runs, erasures, findings, incident_events, incidents, outbox, reports, users
from central.judging.findings import COMPARED, record
from central.judging.own import anonymisation, erasure, notification, separation
from central.judging.own.notification import Incident
from central.judging.own.rules import NOTIFICATION, OWN_RULES
from central.judging.own.settings import Measures
from central.retention.sweep import checkpoints
from evidence.rules import Result

_NODES = (
    select(agents.c.id, agents.c.hostname, agents.c.tenant, agents.c.agent_version, agents.c.health)
    .where(agents.c.revoked_at.is_(None))
    .order_by(agents.c.id)
)


Share = Tuple[int, int]
"""(which, of how many): the slice of the fleet one judgement covers; (0, 1) is every node."""


def in_share(agent_id: str, share: Share) -> bool:
    """Whether the node falls in ``share`` (by a hash of its id: the same slice every time)."""
    which, count = share
    return count <= 1 or zlib.crc32(agent_id.encode()) % count == which


def _incidents(conn: Connection, since: datetime, agent_ids: List[str]) -> Dict[str, List[Incident]]:
    """Incidents of these nodes detected since ``since``, by node, with their first delivered
    notification; the notification measure's own incidents are left out (it would judge its own alarms)."""
    first = (
        select(outbox.c.incident_id, func.min(outbox.c.sent_at).label("sent"))
        .where(outbox.c.event == "trigger", outbox.c.sent_at.is_not(None))
        .group_by(outbox.c.incident_id)
        .subquery()
    )
    held = select(incident_events.c.incident_id).where(incident_events.c.kind == "held")
    out: Dict[str, List[Incident]] = {}
    for chunk in in_lists(agent_ids):
        _incidents_of(conn, since, chunk, first, held, out)
    return out


def _incidents_of(
    conn: Connection, since: datetime, chunk: Sequence[str], first: Any, held: Any, out: Dict[str, List[Incident]]
) -> None:
    rows = conn.execute(
        select(
            incidents.c.id,
            incidents.c.agent_id,
            incidents.c.rule_id,
            incidents.c.severity,
            incidents.c.opened_at,
            incidents.c.acknowledged_at,
            first.c.sent,
            incidents.c.id.in_(held).label("held"),
        )
        .outerjoin(first, first.c.incident_id == incidents.c.id)
        .where(incidents.c.opened_at >= since, incidents.c.rule_id != NOTIFICATION.id, incidents.c.agent_id.in_(chunk))
        .order_by(incidents.c.id)
    ).all()
    for r in rows:
        item = Incident(r.id, r.rule_id, r.severity, r.opened_at, r.sent, r.acknowledged_at, bool(r.held))
        out.setdefault(r.agent_id, []).append(item)


def failed_channels(conn: Connection) -> Dict[str, str]:
    """Channels whose latest finished attempt failed: channel -> its error."""
    tried = or_(outbox.c.sent_at.is_not(None), outbox.c.attempts > 0)
    latest = select(outbox.c.channel, func.max(outbox.c.id).label("id")).where(tried).group_by(outbox.c.channel)
    last = latest.subquery()
    rows = conn.execute(
        select(outbox.c.channel, outbox.c.sent_at, outbox.c.last_error).join(last, last.c.id == outbox.c.id)
    ).all()
    return {r.channel: (r.last_error or "no answer")[:200] for r in rows if r.sent_at is None and r.last_error}


def _erasure_facts(
    conn: Connection, reports_days: int, now: datetime
) -> Tuple[Any, Dict[str, Any], Dict[str, Any], Dict[str, List[erasure.Request]]]:
    """Retention's last run; per node its oldest report past the limit (an index range: retention
    keeps that range empty), its checkpoint, its erasure requests."""
    last = conn.execute(select(duty_runs.c.last_run_at).where(duty_runs.c.name == "retention")).scalar()
    cutoff = now - timedelta(days=reports_days) - erasure.GRACE
    too_old = dict(
        conn.execute(
            select(reports.c.agent_id, func.min(reports.c.received_at))
            .where(reports.c.received_at < cutoff)
            .group_by(reports.c.agent_id)
        ).all()
    )
    marks = {a: {"chain_index": c.chain_index, "pruned_at": c.pruned_at} for a, c in checkpoints(conn).items()}
    requests: Dict[str, List[erasure.Request]] = {}
    for r in conn.execute(select(erasures).order_by(erasures.c.requested_at)).mappings():
        item = erasure.Request(r["reference"], r["requested_at"], r["due_at"], r["erased_at"])
        requests.setdefault(r["agent_id"], []).append(item)
    return last, too_old, marks, requests


def judge_all(
    conn: Connection,
    settings: Measures,
    channels: int,
    now: datetime,
    reports_days: int = 400,
    share: Share = (0, 1),
) -> List[Tuple[str, Result]]:
    """Each live node's verdict on each own measure, for the nodes in ``share``."""
    every = conn.execute(_NODES).mappings().all()  # all of them: whether a pseudonym key is shared
    nodes = [n for n in every if in_share(n["id"], share)]
    last_run, too_old, marks, requests = _erasure_facts(conn, reports_days, now)
    people = separation.people_of(conn.execute(select(users)).mappings().all())
    by_node = _incidents(conn, now - timedelta(days=settings.period_days), [n["id"] for n in nodes])
    failed = failed_channels(conn)
    keys = Counter(
        (n["health"] or {}).get("privacy", {}).get("key_id")
        for n in every
        if isinstance((n["health"] or {}).get("privacy"), dict)
    )
    sharing = {k: v for k, v in keys.items() if k}
    optional = set(settings.pseudonyms_optional)
    out: List[Tuple[str, Result]] = []
    for node in nodes:
        host, tenant = node["hostname"], node["tenant"]
        mine = node["id"]
        out.append(
            (
                mine,
                erasure.judge(
                    host, reports_days, last_run, too_old.get(mine), marks.get(mine), requests.get(mine, []), now
                ),
            )
        )
        out.append((node["id"], separation.judge(host, tenant, people)))
        out.append((node["id"], notification.judge(by_node.get(node["id"], []), failed, channels, settings, now)))
        health = node["health"] if isinstance(node["health"], dict) else None
        out.append((node["id"], anonymisation.judge(host, tenant, node["agent_version"], health, optional, sharing)))
    return out


def run(
    conn: Connection,
    settings: Measures,
    channels: int,
    now: datetime,
    reports_days: int = 400,
    share: Share = (0, 1),
) -> int:
    """Record the verdicts of the nodes in ``share``; how many findings changed status.  Writes
    nothing when none changed (the duty round reads first and writes only when something has to be)."""
    verdicts = judge_all(conn, settings, channels, now, reports_days, share)
    current: Dict[Tuple[str, str], Any] = {}
    for chunk in in_lists(sorted({agent_id for agent_id, _ in verdicts})):
        query = select(findings.c.agent_id, findings.c.rule_id, *COMPARED).where(
            findings.c.rule_id.in_(list(OWN_RULES)), findings.c.agent_id.in_(chunk)
        )
        current.update({(row.agent_id, row.rule_id): row for row in conn.execute(query)})
    changed = 0
    for agent_id, result in verdicts:
        changed += record(conn, agent_id, result, now, None, current.get((agent_id, result.rule.id)))
    return changed
