"""Fleet queries for the dashboard: node state computed in SQL so counts and pages stay fast at scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, and_, case, func, literal, select, true

from central.db.schema import agents, findings

PAGE_SIZE = 50
FLEET_STATES = ("failing", "unknown", "stale", "silent", "passing", "revoked")


def _worst() -> Any:
    """The worst non-passing status per node, read through the status index: at scale almost every
    finding passes, so this touches a small share of the findings table (0 failing, 1 unknown, 2 stale)."""
    rank = case((findings.c.status == "failing", 0), (findings.c.status == "unknown", 1), else_=2)
    return (
        select(findings.c.agent_id, func.min(rank).label("worst"))
        .where(findings.c.status.in_(("failing", "unknown", "stale")))
        .group_by(findings.c.agent_id)
        .subquery("worst")
    )


def _state(worst: Any) -> Any:
    """The same order as central.reads.node_state: revoked, silent, failing, unknown, stale, passing;
    a node without any finding yet is stale (no evidence), never passing."""
    any_finding = select(findings.c.agent_id).where(findings.c.agent_id == agents.c.id).exists()
    return case(
        (agents.c.revoked_at.is_not(None), literal("revoked")),
        (agents.c.silent.is_(True), literal("silent")),
        (worst.c.worst == 0, literal("failing")),
        (worst.c.worst == 1, literal("unknown")),
        (worst.c.worst == 2, literal("stale")),
        (any_finding, literal("passing")),
        else_=literal("stale"),
    )


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
