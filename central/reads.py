"""Read queries behind the API: nodes with their state, findings, evidence, conflicts."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from sqlalchemy import Connection, RowMapping, case, func, literal, select

from central.db.schema import agents, findings, latest_evidence

STATES = ("silent", "failing", "unknown", "stale", "passing")
_NODE_FIELDS = (
    "id",
    "hostname",
    "machine_id",
    "key_fingerprint",
    "tenant",
    "group_name",
    "labels",
    "agent_version",
    "enrolled_at",
    "revoked_at",
    "conflict",
    "last_report_at",
    "last_heartbeat_at",
    "health",
    "silent",
    "silent_since",
    "ledger_length",
)


def node_state(silent: bool, counts: Mapping[str, int]) -> str:
    """The worst of: silent, failing, unknown, stale; passing only when every finding passes."""
    if silent:
        return "silent"
    for state in ("failing", "unknown", "stale"):
        if counts.get(state):
            return state
    return "passing" if counts.get("passing") else "stale"


def _counts(conn: Connection, agent_ids: Optional[List[str]] = None) -> Dict[str, Dict[str, int]]:
    query = select(findings.c.agent_id, findings.c.status, func.count()).group_by(
        findings.c.agent_id, findings.c.status
    )
    if agent_ids is not None:
        query = query.where(findings.c.agent_id.in_(agent_ids))
    out: Dict[str, Dict[str, int]] = {}
    for agent_id, status, count in conn.execute(query):
        out.setdefault(agent_id, {})[status] = count
    return out


def _node(row: RowMapping, counts: Dict[str, int]) -> Dict[str, Any]:
    node = {k: row[k] for k in _NODE_FIELDS}
    node["state"] = "revoked" if row["revoked_at"] is not None else node_state(bool(row["silent"]), counts)
    node["findings"] = {s: counts.get(s, 0) for s in ("passing", "failing", "unknown", "stale")}
    return node


def worst_findings() -> Any:
    """The worst non-passing status per node, read through the status index: at scale almost every
    finding passes, so this touches a small share of the findings table (0 failing, 1 unknown, 2 stale)."""
    rank = case((findings.c.status == "failing", 0), (findings.c.status == "unknown", 1), else_=2)
    return (
        select(findings.c.agent_id, func.min(rank).label("worst"))
        .where(findings.c.status.in_(("failing", "unknown", "stale")))
        .group_by(findings.c.agent_id)
        .subquery("worst")
    )


def node_state_sql(worst: Any) -> Any:
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


def list_nodes(
    conn: Connection,
    state: Optional[str] = None,
    search: Optional[str] = None,
    limit: int = 1000,
    offset: int = 0,
    visible: Any = None,
) -> List[Dict[str, Any]]:
    """``visible``: a condition on ``agents`` (the caller's tenants); None shows every node.

    State, filter and paging are worked out in SQL, so a page of a large fleet reads only its nodes.
    """
    worst = worst_findings()
    query = (
        select(agents)
        .select_from(agents)
        .outerjoin(worst, worst.c.agent_id == agents.c.id)
        .order_by(agents.c.hostname, agents.c.id)
    )
    if visible is not None:
        query = query.where(visible)
    if search:
        query = query.where(agents.c.hostname.icontains(search, autoescape=True))  # same on both databases
    if state:
        query = query.where(node_state_sql(worst) == state)
    rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
    counts = _counts(conn, [r["id"] for r in rows])
    return [_node(r, counts.get(r["id"], {})) for r in rows]


def get_node(conn: Connection, agent_id: str, visible: Any = None) -> Optional[Dict[str, Any]]:
    query = select(agents).where(agents.c.id == agent_id)
    if visible is not None:
        query = query.where(visible)
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return _node(row, _counts(conn, [agent_id]).get(agent_id, {}))


def list_findings(
    conn: Connection,
    agent_id: Optional[str] = None,
    status: Optional[str] = None,
    control: Optional[str] = None,
    rule: Optional[str] = None,
    limit: int = 1000,
    offset: int = 0,
    visible: Any = None,
) -> List[Dict[str, Any]]:
    query = (
        select(findings, agents.c.hostname)
        .join(agents, agents.c.id == findings.c.agent_id)
        .order_by(
            case(
                (findings.c.status == "failing", 0),
                (findings.c.status == "unknown", 1),
                (findings.c.status == "stale", 2),
                else_=3,
            ),
            agents.c.hostname,
            findings.c.rule_id,
        )
    )
    if visible is not None:
        query = query.where(visible)
    if agent_id:
        query = query.where(findings.c.agent_id == agent_id)
    if status:
        query = query.where(findings.c.status == status)
    if rule:
        query = query.where(findings.c.rule_id == rule)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    if control:
        rows = [r for r in rows if control in (r["controls"] or [])]
    return rows[offset : offset + limit]


def latest(conn: Connection, agent_id: str) -> List[Dict[str, Any]]:
    rows = conn.execute(
        select(latest_evidence).where(latest_evidence.c.agent_id == agent_id).order_by(latest_evidence.c.collector)
    ).mappings()
    return [dict(r) for r in rows]


def state_counts(conn: Connection) -> Dict[str, int]:
    rows = conn.execute(select(agents.c.id, agents.c.silent, agents.c.revoked_at)).all()
    counts = _counts(conn)
    out = dict.fromkeys((*STATES, "revoked"), 0)
    for agent_id, silent, revoked in rows:
        out["revoked" if revoked is not None else node_state(bool(silent), counts.get(agent_id, {}))] += 1
    return out
