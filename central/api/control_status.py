"""A status per control and tenant (``GET /api/v1/controls/status``): each node's status for a
control is the worst of its findings for it; a tenant's is the worst of its nodes'.  Node
measures and the centre's own (central/judging/own/) alike."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import Connection, select

from central.db.schema import agents, findings
from evidence.controls import CONTROLS

WORST_FIRST = ("failing", "unknown", "stale", "passing")


def _worse(a: Optional[str], b: str) -> str:
    if a is None:
        return b
    return min(a, b, key=lambda s: WORST_FIRST.index(s) if s in WORST_FIRST else len(WORST_FIRST))


def status_by_tenant(conn: Connection, visible: Any, tenant: Optional[str]) -> List[Dict[str, Any]]:
    query = (
        select(agents.c.id, agents.c.tenant, findings.c.status, findings.c.controls, findings.c.message)
        .join(findings, findings.c.agent_id == agents.c.id)
        .where(agents.c.revoked_at.is_(None))
    )
    if visible is not None:
        query = query.where(visible)
    if tenant is not None:
        query = query.where(agents.c.tenant == tenant)
    node_status: Dict[Tuple[Optional[str], str, str], str] = {}
    failing: Dict[Tuple[Optional[str], str], List[str]] = defaultdict(list)
    for agent_id, owner, status, controls, message in conn.execute(query):
        for control in controls or []:
            key = (owner, control, agent_id)
            node_status[key] = _worse(node_status.get(key), status)
            if status == "failing" and len(failing[(owner, control)]) < 3:
                failing[(owner, control)].append(message)
    table: Dict[Tuple[Optional[str], str], Dict[str, int]] = defaultdict(lambda: dict.fromkeys(WORST_FIRST, 0))
    for (owner, control, _), status in node_status.items():
        if status in WORST_FIRST:
            table[(owner, control)][status] += 1
    out = []
    for (owner, control), counts in sorted(table.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        if control not in CONTROLS:
            continue
        worst = next(s for s in WORST_FIRST if counts[s])
        out.append(
            {
                "control": control,
                "title": CONTROLS[control].title,
                "tenant": owner,
                "status": worst,
                "nodes": counts,
                "failing": failing.get((owner, control), []),
            }
        )
    return out
