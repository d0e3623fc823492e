"""Fleet queries for the dashboard: counts by state in SQL, and a page that reads only its own nodes' findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, select

from central.db.schema import agents, findings
from central.judging.node_states import FLEET_STATES, count_states, finding_counts, node_filter, node_page, node_state

__all__ = ["FLEET_STATES", "PAGE_SIZE", "FleetPage", "failing_controls", "fleet"]

PAGE_SIZE = 50
_COLUMNS = [
    agents.c[k]
    for k in (
        "id",
        "hostname",
        "tenant",
        "group_name",
        "last_heartbeat_at",
        "last_report_at",
        "silent_since",
        "revoked_at",
        "silent",
    )
]


@dataclass(frozen=True)
class FleetPage:
    nodes: List[Dict[str, Any]]
    counts: Dict[str, int]
    total: int
    """Nodes matching the filter (for pagination)."""


def fleet(
    conn: Connection, visible: Any, state: Optional[str], search: Optional[str], page: int, size: int = PAGE_SIZE
) -> FleetPage:
    counts = count_states(conn, *node_filter(visible, search))
    total = counts.get(state, 0) if state else sum(counts.values())
    offset = max(page - 1, 0) * size
    nodes = [dict(r) for r in conn.execute(node_page(_COLUMNS, visible, search, state, size, offset)).mappings()]
    ids = [n["id"] for n in nodes]
    by_status = finding_counts(conn, ids)
    failing = failing_controls(conn, ids)
    for node in nodes:
        revoked, silent = node.pop("revoked_at") is not None, node.pop("silent")
        node["state"] = "revoked" if revoked else node_state(silent, by_status.get(node["id"], {}))
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
