"""Each rule's status on each node at a moment, rebuilt from ``finding_changes``.

The status at ``t`` is the last change at or before ``t`` (ordered by time, then id).
A rule whose last change is ``retired`` was no longer in force; one with no change yet
had not been evaluated.  The observed value is the one recorded with that change: the
value that made the status what it was (it is what an export can reproduce later); so are
the controls and severity the rule had then, whatever the policy says today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Iterator, List, Optional, Sequence

from sqlalchemy import Connection, select

from central.db.id_lists import in_lists
from central.db.schema import finding_changes
from central.judging.findings import RETIRED

_CHUNK = 500


@dataclass(frozen=True)
class Change:
    agent_id: str
    rule_id: str
    from_status: Optional[str]
    to_status: str
    at: datetime
    observed: Any
    report_id: Optional[str]
    controls: Optional[List[str]]
    """None in changes older than migration 0008 of a rule it could not place."""
    severity: Optional[str]
    message: Optional[str]
    """The finding's sentence at that change; None in changes older than migration 0014."""


def _changes(conn: Connection, agent_ids: Sequence[str], *where: Any) -> Iterator[Change]:
    columns = (
        finding_changes.c.agent_id,
        finding_changes.c.rule_id,
        finding_changes.c.from_status,
        finding_changes.c.to_status,
        finding_changes.c.at,
        finding_changes.c.observed,
        finding_changes.c.report_id,
        finding_changes.c.controls,
        finding_changes.c.severity,
        finding_changes.c.message,
    )
    for chunk in in_lists(agent_ids, _CHUNK):
        rows = conn.execute(
            select(*columns)
            .where(finding_changes.c.agent_id.in_(chunk), *where)
            .order_by(finding_changes.c.agent_id, finding_changes.c.rule_id, finding_changes.c.at, finding_changes.c.id)
        )
        for row in rows:
            yield Change(**row._mapping)


def states_at(conn: Connection, agent_ids: Sequence[str], moment: datetime) -> Dict[str, Dict[str, Change]]:
    """Per node, per rule in force: the change that set its status as it stood at ``moment``."""
    last: Dict[str, Dict[str, Change]] = {}
    for change in _changes(conn, agent_ids, finding_changes.c.at <= moment):
        last.setdefault(change.agent_id, {})[change.rule_id] = change
    return {agent: {rule: c for rule, c in rules.items() if c.to_status != RETIRED} for agent, rules in last.items()}


def changes_between(
    conn: Connection, agent_ids: Sequence[str], start: datetime, end: datetime
) -> Dict[str, Dict[str, List[Change]]]:
    """Per node and rule: every change after ``start`` up to and including ``end``, in order."""
    out: Dict[str, Dict[str, List[Change]]] = {}
    where = (finding_changes.c.at > start, finding_changes.c.at <= end)
    for change in _changes(conn, agent_ids, *where):
        out.setdefault(change.agent_id, {}).setdefault(change.rule_id, []).append(change)
    return out


def controls_at_end(now: Optional[Change], during: Sequence[Change]) -> List[str]:
    """The controls recorded with a rule's last change up to the export's end, its retirement
    included (a rule no longer in force at the end is listed under what it served until then)."""
    last = during[-1] if during else now
    return list(last.controls or []) if last is not None else []
