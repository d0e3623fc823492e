"""Read queries behind the API: nodes with their state, findings, evidence, conflicts."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from pydantic_core import from_json
from sqlalchemy import Connection, Text, case, cast, select

from central.db.json_lists import json_list_has
from central.db.schema import agents, findings, latest_evidence
from central.judging.node_states import STATES, count_states, finding_counts, node_page, node_state

__all__ = ["STATES", "get_node", "latest", "list_findings", "list_nodes", "node_state", "state_counts"]

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
_LISTED = [cast(agents.c[k], Text).label(k) if k in ("labels", "health") else agents.c[k] for k in _NODE_FIELDS]
"""The list reads JSON columns as text and parses them itself: one step instead of the driver's and the type's."""


def _node(node: Dict[str, Any], counts: Mapping[str, int]) -> Dict[str, Any]:
    """``node`` (its _NODE_FIELDS) with its state and finding counts added."""
    node["state"] = "revoked" if node["revoked_at"] is not None else node_state(node["silent"], counts)
    node["findings"] = {
        "passing": counts.get("passing", 0),
        "failing": counts.get("failing", 0),
        "unknown": counts.get("unknown", 0),
        "stale": counts.get("stale", 0),
    }
    return node


def list_nodes(
    conn: Connection,
    state: Optional[str] = None,
    search: Optional[str] = None,
    limit: int = 1000,
    offset: int = 0,
    visible: Any = None,
) -> List[Dict[str, Any]]:
    """``visible``: a condition on ``agents`` (the caller's tenants); None shows every node.

    Filter (the state's with the fleet page's central.judging.node_states) and paging are worked out in SQL,
    and only the page's nodes have their findings counted.
    """
    rows = conn.execute(node_page(_LISTED, visible, search, state, limit, offset)).all()
    counts = finding_counts(conn, [row[0] for row in rows])
    nodes = []
    none: Dict[str, int] = {}
    for row in rows:
        node = dict(zip(_NODE_FIELDS, row))
        labels, health = node["labels"], node["health"]
        node["labels"] = None if labels is None else from_json(labels)
        node["health"] = None if health is None else from_json(health)
        nodes.append(_node(node, counts.get(row[0], none)))
    return nodes


def get_node(conn: Connection, agent_id: str, visible: Any = None) -> Optional[Dict[str, Any]]:
    query = select(*(agents.c[k] for k in _NODE_FIELDS)).where(agents.c.id == agent_id)
    if visible is not None:
        query = query.where(visible)
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return _node(dict(row), finding_counts(conn, [agent_id]).get(agent_id, {}))


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
    if control:  # before paging, so a page is full whenever more findings match
        query = query.where(json_list_has(findings.c.controls, control, conn.dialect.name))
    return [dict(r) for r in conn.execute(query.limit(limit).offset(offset)).mappings()]


def latest(conn: Connection, agent_id: str) -> List[Dict[str, Any]]:
    rows = conn.execute(
        select(latest_evidence).where(latest_evidence.c.agent_id == agent_id).order_by(latest_evidence.c.collector)
    ).mappings()
    return [dict(r) for r in rows]


def state_counts(conn: Connection) -> Dict[str, int]:
    """How many nodes are in each state, revoked included (for the metrics)."""
    counts = count_states(conn)
    return {s: counts[s] for s in (*STATES, "revoked")}
