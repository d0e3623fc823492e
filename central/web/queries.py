"""Fleet queries for the dashboard: node state computed in SQL so counts and pages stay fast at scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, and_, func, select, true

from central.db.schema import agents, findings
from central.reads import node_state_sql as _state
from central.reads import worst_findings as _worst

PAGE_SIZE = 50
FLEET_STATES = ("failing", "unknown", "stale", "silent", "passing", "revoked")


@dataclass(frozen=True)
class FleetPage:
    nodes: List[Dict[str, Any]]
    counts: Dict[str, int]
    total: int
    """Nodes matching the filter (for pagination)."""


def fleet(
    conn: Connection, visible: Any, state: Optional[str], search: Optional[str], page: int, size: int = PAGE_SIZE
) -> FleetPage:
    worst = _worst()
    state_col = _state(worst).label("state")
    conditions = []
    if visible is not None:
        conditions.append(visible)
    if search:
        conditions.append(agents.c.hostname.icontains(search, autoescape=True))
    where = and_(true(), *conditions)
    counts = {s: 0 for s in FLEET_STATES}
    counted = (
        select(state_col, func.count())
        .select_from(agents)
        .outerjoin(worst, worst.c.agent_id == agents.c.id)
        .where(where)
        .group_by(state_col)
    )
    for name, number in conn.execute(counted):
        counts[name] = number
    if state:
        where = and_(where, _state(worst) == state)
        total = counts.get(state, 0)
    else:
        total = sum(counts.values())
    rows = conn.execute(
        select(
            agents.c.id,
            agents.c.hostname,
            agents.c.tenant,
            agents.c.group_name,
            agents.c.last_heartbeat_at,
            agents.c.last_report_at,
            agents.c.silent_since,
            state_col,
        )
        .select_from(agents)
        .outerjoin(worst, worst.c.agent_id == agents.c.id)
        .where(where)
        .order_by(agents.c.hostname, agents.c.id)
        .limit(size)
        .offset(max(page - 1, 0) * size)
    ).mappings()
    nodes = [dict(r) for r in rows]
    failing = failing_controls(conn, [n["id"] for n in nodes])
    for node in nodes:
        node["failing_controls"] = failing.get(node["id"], [])
    return FleetPage(nodes, counts, total)


def failing_controls(conn: Connection, agent_ids: List[str]) -> Dict[str, List[str]]:
    """The controls each node currently fails (sorted ids), for one page of nodes."""
    if not agent_ids:
        return {}
    out: Dict[str, set[str]] = {}
    rows = conn.execute(
        select(findings.c.agent_id, findings.c.controls).where(
            findings.c.agent_id.in_(agent_ids), findings.c.status == "failing"
        )
    )
    for agent_id, controls in rows:
        out.setdefault(agent_id, set()).update(controls or [])
    return {k: sorted(v) for k, v in out.items()}
