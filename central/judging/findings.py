"""Findings: the verdict of each rule on each node, kept current as evidence arrives.

A finding changes only when its verdict changes; each change is recorded in
``finding_changes`` (the history incidents and audits are built from) with the controls
and severity the rule had then, so the auditor's export can say what was true at a past
moment after the policy has moved on.  Every update is guarded on the old status, so two
centre processes never record the same change twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, Dict, List, NamedTuple, Optional

from sqlalchemy import Connection, RowMapping, and_, bindparam, exists, select, update

from central.db.schema import agents, finding_changes, findings, latest_evidence, pending_evaluation
from central.judging.own.rules import OWN_RULES
from evidence.policy import Policy
from evidence.rules import Result, Rule, Verdict, evaluate, parse_duration

RETIRED = "retired"
"""``finding_changes.to_status`` when a rule stops applying to a node (removed, disabled, overridden)."""


def rules_for_agent(policy: Policy, agent: RowMapping) -> List[Rule]:
    return policy.rules_for(agent["tenant"], agent["group_name"], agent["labels"] or {})


MESSAGE_MAX = 2000
"""A finding's message is kept to this many characters (the rest of the evidence is in the report)."""
_MISSING: Any = object()


class Shown(NamedTuple):
    """What a finding shows; a verdict that changes none of these is not written."""

    status: str
    observed: Any
    message: str
    severity: str
    rule_version: int
    controls: List[str]


COMPARED = tuple(findings.c[name] for name in Shown._fields)
"""The columns of :class:`Shown`, in its order: ``select(*COMPARED)`` reads what a verdict is compared with."""
_SHOWN_OF = attrgetter(*Shown._fields)
"""What a row with those columns shows, as a tuple (compares equal to a :class:`Shown`)."""


def shown(result: Result) -> Shown:
    """What the finding shows once ``result`` is recorded."""
    rule = result.rule
    message = result.message[:MESSAGE_MAX]
    return Shown(result.verdict.value, result.observed, message, rule.severity, rule.version, list(rule.controls))


# Built once: a statement built per verdict (``.values(...)`` with the values in it) costs several
# times its running, and a node's first report records a finding and a change for every rule.
_ONE = and_(findings.c.agent_id == bindparam("b_agent"), findings.c.rule_id == bindparam("b_rule"))
_CURRENT = select(*COMPARED).where(_ONE)
_NEW = findings.insert()
_SAME_STATUS = update(findings).where(_ONE)
"""The values to set are the parameters named after columns."""
_NEW_STATUS = update(findings).where(_ONE, findings.c.status == bindparam("b_status"))
"""Guarded on the status it was read with: another process that changed it first wins."""
_CHANGE = finding_changes.insert()


class Changes:
    """``finding_changes`` rows gathered while a batch of reports is judged, written by one statement
    (:meth:`write`): on PostgreSQL one round trip instead of one per changed rule, which a node's
    first report has for every rule.  The findings themselves are written at once, as before: a
    later verdict of the same batch updates them."""

    def __init__(self) -> None:
        self.rows: List[Dict[str, Any]] = []

    def write(self, conn: Connection) -> None:
        if self.rows:
            conn.execute(_CHANGE, self.rows)
            self.rows = []


def record(
    conn: Connection,
    agent_id: str,
    result: Result,
    now: datetime,
    report_id: Optional[str],
    old: Any = _MISSING,
    changes: Optional[Changes] = None,
) -> bool:
    """Store one verdict; True when the status changed (or the finding is new).

    Nothing is written when neither status, observed value nor message changed: the
    finding keeps the report that established it, and freshness is judged from
    ``latest_evidence`` (see :func:`mark_stale`).  ``old`` is the current row (or None)
    when the caller has already read it; ``changes``: where the change is kept for the caller to
    write with the others (else it is written now).
    """
    rule = result.rule
    if old is _MISSING:
        old = conn.execute(_CURRENT, {"b_agent": agent_id, "b_rule": rule.id}).first()
    new = shown(result)
    if old is not None and _SHOWN_OF(old) == new:
        return False
    status = new.status
    values: Dict[str, Any] = {
        "rule_version": new.rule_version,
        "controls": new.controls,
        "severity": new.severity,
        "observed": new.observed,
        "message": new.message,
        "evaluated_at": now,
        "evidence_at": result.evidence_at,
        "report_id": report_id,
    }
    if old is None:
        conn.execute(_NEW, {"agent_id": agent_id, "rule_id": rule.id, "status": status, "since": now, **values})
        changed = True
    elif old.status == status:
        conn.execute(_SAME_STATUS, {"b_agent": agent_id, "b_rule": rule.id, **values})
        changed = False
    else:
        done = conn.execute(
            _NEW_STATUS,
            {"b_agent": agent_id, "b_rule": rule.id, "b_status": old.status, "status": status, "since": now, **values},
        )
        changed = bool(done.rowcount)
    if changed:
        change = {
            "agent_id": agent_id,
            "rule_id": rule.id,
            "from_status": None if old is None else old.status,
            "to_status": status,
            "at": now,
            "observed": result.observed,
            "report_id": report_id,
            "controls": new.controls,
            "severity": new.severity,
            "message": new.message,
        }
        if changes is None:
            conn.execute(_CHANGE, change)
        else:
            changes.rows.append(change)
    return changed


def ensure_all(conn: Connection, policy: Policy, agent: RowMapping, now: datetime) -> None:
    """A finding for every rule of a node: those without evidence start as stale, never passing."""
    have = {r.rule_id for r in conn.execute(select(findings.c.rule_id).where(findings.c.agent_id == agent["id"]))}
    for rule in rules_for_agent(policy, agent):
        if rule.id not in have:
            record(conn, agent["id"], evaluate(rule, None, now), now, None)


def reevaluate(conn: Connection, policy: Policy, agent: RowMapping, now: datetime) -> int:
    """After a policy change: every rule in force judged on the node's latest evidence, and the
    findings of rules no longer in force for it retired (their change recorded).  Returns changes."""
    latest: Dict[str, Any] = {
        row.collector: row
        for row in conn.execute(
            select(latest_evidence.c.collector, latest_evidence.c.record, latest_evidence.c.report_id).where(
                latest_evidence.c.agent_id == agent["id"]
            )
        )
    }
    rules = rules_for_agent(policy, agent)
    changes = 0
    for rule in rules:
        row = latest.get(rule.collector)
        result = evaluate(rule, None if row is None else row.record, now)
        changes += record(conn, agent["id"], result, now, None if row is None else row.report_id)
    in_force = {r.id for r in rules}
    for old in conn.execute(
        select(findings.c.rule_id, findings.c.status, findings.c.controls, findings.c.severity).where(
            findings.c.agent_id == agent["id"]
        )
    ).all():
        if old.rule_id in in_force or old.rule_id in OWN_RULES:
            continue  # the centre's own measures are not the policy's (central/judging/own/)
        key = and_(findings.c.agent_id == agent["id"], findings.c.rule_id == old.rule_id)
        if conn.execute(findings.delete().where(key, findings.c.status == old.status)).rowcount:
            conn.execute(
                finding_changes.insert().values(
                    agent_id=agent["id"],
                    rule_id=old.rule_id,
                    from_status=old.status,
                    to_status=RETIRED,
                    at=now,
                    observed=None,
                    report_id=None,
                    controls=old.controls,  # what it was classed under until then
                    severity=old.severity,
                    message=None,
                )
            )
            changes += 1
    return changes


def _shortest_max_age(policy: Policy, collector: str) -> float:
    """The least max_age any node can have for a collector's rules, overrides included."""
    ids = {r.id for r in policy.rules if r.collector == collector}
    ages = [r.max_age_s for r in policy.rules if r.id in ids]
    for override in policy.overrides:
        for rule_id, change in override.changes.items():
            if rule_id in ids and "max_age" in change:
                ages.append(parse_duration(change["max_age"]))
    return min(ages, default=3600.0)


def mark_stale(conn: Connection, policy: Policy, now: datetime) -> int:
    """Findings whose collector's latest evidence is older than their rule allows become stale.

    Freshness comes from ``latest_evidence`` (one row per node and collector, updated by
    every report), so reports that change no finding need not touch the findings.
    """
    count = 0
    cache: Dict[Any, Dict[str, Rule]] = {}
    for collector in sorted({r.collector for r in policy.rules}):
        rule_ids = [r.id for r in policy.rules if r.collector == collector]
        shortest = _shortest_max_age(policy, collector)
        rows = conn.execute(
            select(
                findings.c.agent_id,
                findings.c.rule_id,
                *COMPARED,
                latest_evidence.c.collected_at,
                agents.c.tenant,
                agents.c.group_name,
                agents.c.labels,
            )
            .join(
                latest_evidence,
                and_(latest_evidence.c.agent_id == findings.c.agent_id, latest_evidence.c.collector == collector),
            )
            .join(agents, agents.c.id == findings.c.agent_id)
            .where(
                findings.c.rule_id.in_(rule_ids),
                findings.c.status != Verdict.STALE.value,
                latest_evidence.c.collected_at < now - timedelta(seconds=shortest),
                agents.c.revoked_at.is_(None),
                # a node whose newer reports wait to be judged is not stale, only not judged yet
                ~exists().where(pending_evaluation.c.agent_id == findings.c.agent_id),
            )
        ).all()
        for row in rows:
            scope = (row.tenant, row.group_name, tuple(sorted((row.labels or {}).items())))
            if scope not in cache:
                cache[scope] = {r.id: r for r in policy.rules_for(row.tenant, row.group_name, row.labels or {})}
            rule = cache[scope].get(row.rule_id)
            if rule is None:
                continue
            age = (now - row.collected_at).total_seconds()
            if age > rule.max_age_s:
                result = Result(
                    rule,
                    Verdict.STALE,
                    None,
                    f"latest {rule.collector} evidence is {age / 3600:.1f} h old (maximum {rule.max_age_s / 3600:g} h)",
                    row.collected_at,
                )
                count += record(conn, row.agent_id, result, now, None, row)
    return count
