"""The fleet page and one node's page; another tenant's node is as absent as a missing one (M10)."""

from __future__ import annotations

from typing import Annotated, Any, Dict, List, Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool

from central.alerting import manage
from central.alerting.suppress import in_force
from central.auth.principal import Principal
from central.clock import utcnow
from central.db.schema import agents, finding_changes
from central.judging import read_queries
from central.web import page_queries
from central.web.common import centre_of, person, read
from central.web.render import page
from evidence.policy import Policy

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(person)]
HISTORY_PER_RULE = 20


@router.get("/")
async def fleet(
    request: Request,
    who: Person,
    state: Optional[str] = Query(None, max_length=16),
    q: Optional[str] = Query(None, max_length=255),
    page_no: int = Query(1, alias="page", ge=1, le=100000),
) -> Response:
    if state not in page_queries.FLEET_STATES:
        state = None
    search = (q or "").strip() or None
    result = await read(request, page_queries.fleet, who.tenant_filter(agents.c.tenant), state, search, page_no)
    _pipeline, problems = await run_in_threadpool(centre_of(request).pipeline_health)
    pages = max(1, -(-result.total // page_queries.PAGE_SIZE))
    return page(
        request,
        "fleet.html",
        who,
        fleet=result,
        # the same checks as /healthz; the reasons name channels and their errors, which are the
        # operator's: a person limited to some tenants is told only that alerting is degraded
        degraded=bool(problems),
        health=[p.reason for p in problems] if who.tenants is None else [],
        states=page_queries.FLEET_STATES,
        state=state,
        q=search or "",
        page_no=page_no,
        pages=pages,
    )


def node_detail(
    conn: Connection, agent_id: str, who: Principal, policy: Optional[Policy] = None
) -> Optional[Dict[str, Any]]:
    node = read_queries.get_node(conn, agent_id, who.tenant_filter(agents.c.tenant))
    if node is None:
        return None
    now = utcnow()
    force = in_force(conn, now)
    findings = read_queries.list_findings(conn, agent_id)
    rules = {r.id: r for r in policy.rules} if policy is not None else {}
    failing = {f["rule_id"] for f in findings if f["status"] == "failing"}
    for finding in findings:
        finding["accepted"] = force.accepted(node, finding["rule_id"])
        rule = rules.get(finding["rule_id"])
        finding["title"] = rule.title if rule is not None else None
        # one cause, one page: the alert engine opens no incident for it while its cause fails
        causes = [c for c in rule.depends_on if c in failing] if rule is not None else []
        deviating = finding["status"] in ("failing", "stale")
        finding["suppressed_by"] = causes[0] if causes and deviating else None
    changes = conn.execute(
        select(finding_changes)
        .where(finding_changes.c.agent_id == agent_id)
        .order_by(finding_changes.c.at.desc(), finding_changes.c.id.desc())
        .limit(500)
    ).mappings()
    history: Dict[str, List[Dict[str, Any]]] = {}
    for change in changes:
        kept = history.setdefault(change["rule_id"], [])
        if len(kept) < HISTORY_PER_RULE:
            kept.append(dict(change))
    controls_of = {f["rule_id"]: list(f["controls"] or []) for f in findings}
    history = dict(sorted(history.items(), key=lambda item: (controls_of.get(item[0], ["~"]), item[0])))
    covers = force._covers  # the same matching the alert engine uses
    return {
        "node": node,
        "findings": findings,
        "evidence": read_queries.latest(conn, agent_id),
        "history": history,
        "controls_of": controls_of,
        "incidents": manage.list_incidents(conn, agent_id=agent_id, limit=50),
        "waivers": [w for w in force.waivers if covers(w, node)],
        "windows": [w for w in force.windows if covers(w, node)],
    }


@router.get("/nodes/{agent_id}")
async def node_page(request: Request, agent_id: str, who: Person) -> Response:
    detail = await read(request, node_detail, agent_id[:64], who, centre_of(request).policy.policy)
    if detail is None:
        return page(request, "error.html", who, 404, title="Not found", message=f"There is no node {agent_id[:64]!r}.")
    return page(request, "node.html", who, **detail)
