"""The controls M01-M13: references, compliance over time (inline SVG) and which nodes pass or fail."""

from __future__ import annotations

from typing import Annotated, Any, Dict, List, Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection, and_, select

from central.auth.principal import Principal
from central.clock import utcnow
from central.db.schema import agents, findings
from central.web import history
from central.web.common import person, read
from central.web.render import page
from evidence.controls import CONTROLS

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(person)]


def _visible(who: Principal, tenant: Optional[str]) -> Any:
    condition = who.tenant_filter(agents.c.tenant)
    if tenant:
        narrowed = agents.c.tenant == tenant
        condition = narrowed if condition is None else and_(condition, narrowed)
    return condition


def _tenants(conn: Connection, who: Principal) -> List[str]:
    query = select(agents.c.tenant).where(agents.c.tenant.is_not(None)).distinct().order_by(agents.c.tenant)
    visible = who.tenant_filter(agents.c.tenant)
    if visible is not None:
        query = query.where(visible)
    return [t for (t,) in conn.execute(query)]


def overview(conn: Connection, who: Principal, tenant: Optional[str]) -> Dict[str, Any]:
    series = history.compliance(conn, utcnow(), _visible(who, tenant), list(CONTROLS))
    return {
        "rows": [{"control": CONTROLS[s.control], "series": s, "line": history.sparkline(s)} for s in series],
        "tenants": _tenants(conn, who),
    }


def control_nodes(conn: Connection, who: Principal, control: str) -> List[Dict[str, Any]]:
    query = (
        select(findings, agents.c.hostname, agents.c.tenant)
        .join(agents, agents.c.id == findings.c.agent_id)
        .where(agents.c.revoked_at.is_(None))
        .order_by(findings.c.status, agents.c.hostname, findings.c.rule_id)
    )
    visible = who.tenant_filter(agents.c.tenant)
    if visible is not None:
        query = query.where(visible)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    order = {"failing": 0, "unknown": 1, "stale": 2, "passing": 3}
    chosen = [r for r in rows if control in (r["controls"] or [])]
    return sorted(chosen, key=lambda r: (order.get(r["status"], 9), r["hostname"], r["rule_id"]))


@router.get("/controls")
async def controls(request: Request, who: Person, tenant: Optional[str] = Query(None, max_length=128)) -> Response:
    if tenant and not who.sees(tenant):
        tenant = None
    data = await read(request, overview, who, tenant or None)
    return page(request, "controls.html", who, tenant=tenant or "", days=history.DAYS, **data)


@router.get("/controls/{control_id}")
async def control(request: Request, control_id: str, who: Person) -> Response:
    found = CONTROLS.get(control_id)
    if found is None:
        return page(request, "error.html", who, 404, title="Not found", message="Controls are M01 to M13.")
    rows = await read(request, control_nodes, who, control_id)
    return page(request, "control.html", who, control=found, rows=rows)
