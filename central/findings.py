"""Findings: the verdict of each rule on each node, kept current as evidence arrives.

A finding changes only when its verdict changes; each change is recorded in
``finding_changes`` (the history incidents and audits are built from).  Every
update is guarded on the old status, so two centre processes never record the
same change twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, RowMapping, and_, select, update

from central.db.schema import agents, finding_changes, findings
from evidence.policy import Policy
from evidence.rules import Result, Rule, Verdict, evaluate
from evidence.wire import Report


def _rules(policy: Policy, agent: RowMapping) -> List[Rule]:
    return policy.rules_for(agent["tenant"], agent["group_name"], agent["labels"] or {})


def record(conn: Connection, agent_id: str, result: Result, now: datetime, report_id: Optional[str]) -> bool:
    """Store one verdict; True when the status changed (or the finding is new)."""
    rule = result.rule
    key = and_(findings.c.agent_id == agent_id, findings.c.rule_id == rule.id)
    old = conn.execute(select(findings.c.status).where(key)).first()
    status = result.verdict.value
    values: Dict[str, Any] = {
        "rule_version": rule.version,
        "controls": list(rule.controls),
        "severity": rule.severity,
        "observed": result.observed,
        "message": result.message[:2000],
        "evaluated_at": now,
        "evidence_at": result.evidence_at,
        "report_id": report_id,
    }
    if old is None:
        conn.execute(findings.insert().values(agent_id=agent_id, rule_id=rule.id, status=status, since=now, **values))
        changed = True
    elif old.status == status:
        conn.execute(update(findings).where(key).values(**values))
        changed = False
    else:
        done = conn.execute(
            update(findings).where(key, findings.c.status == old.status).values(status=status, since=now, **values)
        )
        changed = bool(done.rowcount)
    if changed:
        conn.execute(
            finding_changes.insert().values(
                agent_id=agent_id,
                rule_id=rule.id,
                from_status=None if old is None else old.status,
                to_status=status,
                at=now,
                observed=result.observed,
                report_id=report_id,
            )
        )
    return changed


def on_report(policy: Policy) -> Any:
    """The ingest hook: evaluate the rules that read the collectors this report carries."""

    def hook(conn: Connection, agent: RowMapping, report: Report, now: datetime) -> None:
        records = {e.collector: e.to_dict() for e in report.evidence}
        for rule in _rules(policy, agent):
            if rule.collector in records:
                record(conn, agent["id"], evaluate(rule, records[rule.collector], now), now, report.report_id)

    return hook


def ensure_all(conn: Connection, policy: Policy, agent: RowMapping, now: datetime) -> None:
    """A finding for every rule of a node: those without evidence start as stale, never passing."""
    have = {r.rule_id for r in conn.execute(select(findings.c.rule_id).where(findings.c.agent_id == agent["id"]))}
    for rule in _rules(policy, agent):
        if rule.id not in have:
            record(conn, agent["id"], evaluate(rule, None, now), now, None)


def mark_stale(conn: Connection, policy: Policy, now: datetime) -> int:
    """Findings whose evidence is older than their rule allows become stale. Returns how many."""
    shortest = min((r.max_age_s for r in policy.rules), default=3600.0)
    rows = conn.execute(
        select(
            findings.c.agent_id,
            findings.c.rule_id,
            findings.c.evidence_at,
            agents.c.tenant,
            agents.c.group_name,
            agents.c.labels,
        )
        .join(agents, agents.c.id == findings.c.agent_id)
        .where(
            findings.c.status != Verdict.STALE.value,
            findings.c.evidence_at < now - timedelta(seconds=shortest),
            agents.c.revoked_at.is_(None),
        )
    ).all()
    count = 0
    cache: Dict[Any, Dict[str, Rule]] = {}
    for row in rows:
        scope = (row.tenant, row.group_name, tuple(sorted((row.labels or {}).items())))
        if scope not in cache:
            cache[scope] = {r.id: r for r in policy.rules_for(row.tenant, row.group_name, row.labels or {})}
        rule = cache[scope].get(row.rule_id)
        if rule is None or row.evidence_at is None:
            continue
        if (now - row.evidence_at).total_seconds() > rule.max_age_s:
            age_h = (now - row.evidence_at).total_seconds() / 3600
            result = Result(
                rule,
                Verdict.STALE,
                None,
                f"latest {rule.collector} evidence is {age_h:.1f} h old (maximum {rule.max_age_s / 3600:g} h)",
                row.evidence_at,
            )
            count += record(conn, row.agent_id, result, now, None)
    return count
