"""Read endpoints: nodes, findings, evidence, controls, policy, enrolment conflicts (API key required)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Dict, List, Optional, Sequence

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from central import enrolment
from central.api import control_status
from central.api.refusals import refusals
from central.auth.deps import principal
from central.auth.principal import Principal
from central.db.engine import read_tx
from central.db.schema import agents
from central.judging import read_queries
from central.request_params import Offset
from central.request_refused import refuse
from central.runtime.gc_pause import collector_paused
from central.runtime.service import Centre
from evidence.controls import CONTROLS


def _centre(request: Request) -> Centre:
    centre: Centre = request.app.state.centre
    return centre


require_key = principal
"""Kept for the routers that import it: the caller, by API key or dashboard session."""
Person = Annotated[Principal, Depends(principal)]


router = APIRouter(
    prefix="/api/v1", tags=["read"], dependencies=[Depends(principal)], responses=refusals(401, 403, 404)
)
STATES = ("passing", "failing", "unknown", "stale", "silent", "revoked")
STATUSES = ("passing", "failing", "unknown", "stale")
_CONTROL = re.compile(r"^M(0[1-9]|1[0-3])$")


def _one_of(name: str, value: Optional[str], allowed: Sequence[str]) -> Optional[str]:
    """A filter value, or a 422 that lists what is allowed (same error shape as every refusal)."""
    if value is not None and value not in allowed:
        raise refuse(422, "bad_filter", f"{name}={value[:64]!r} is not one of: {', '.join(allowed)}")
    return value


def _control(value: Optional[str]) -> Optional[str]:
    if value is not None and not _CONTROL.match(value):
        raise refuse(422, "bad_filter", f"control={value[:64]!r} is not a control id (M01 to M13)")
    return value


def _text(name: str, value: Optional[str], longest: int) -> Optional[str]:
    if value is not None and len(value) > longest:
        raise refuse(422, "bad_filter", f"{name} is longer than {longest} characters")
    return value


def _json(value: Any) -> bytes:
    """The bytes FastAPI would send (UTC times end in Z), by orjson: three times as fast as pydantic
    for a list of 10,000 nodes. What orjson refuses (an integer past 64 bits, or evidence nested past
    its 255 levels, stored before the centre refused such reports) goes to pydantic, and what pydantic
    refuses too (nested past its own depth) to Python's json, which goes as deep as the stored rows."""
    try:
        return orjson.dumps(value, option=orjson.OPT_UTC_Z)
    except TypeError:
        pass
    try:
        return to_json(value)
    except ValueError:
        return json.dumps(value, default=_iso, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON")


async def _read_json(request: Request, fn: Any, *args: Any) -> Response:
    """``fn``'s answer as a JSON response, read and serialised in a worker thread in one step: for a
    list of thousands of nodes, validating it against the route's model first would double the time."""
    centre = _centre(request)

    def work() -> bytes:
        with collector_paused(), read_tx(centre.engine) as conn:
            return _json(fn(conn, *args))

    return Response(await run_in_threadpool(work), media_type="application/json")


async def _read(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    centre = _centre(request)

    def work() -> Any:
        with read_tx(centre.engine) as conn:
            return fn(conn, *args, **kwargs)

    return await run_in_threadpool(work)


@router.get(
    "/nodes",
    summary="Every node with its state, last heartbeat and finding counts",
    response_model=List[Dict[str, Any]],
)
async def nodes(
    request: Request,
    person: Person,
    state: Optional[str] = Query(None, description="one of " + ", ".join(STATES)),
    search: Optional[str] = Query(None, description="part of the hostname (any case)"),
    limit: int = Query(1000, ge=1, le=10000),
    offset: Offset = 0,
) -> Response:
    state = _one_of("state", state, STATES)
    search = _text("search", search, 255)
    visible = person.tenant_filter(agents.c.tenant)
    return await _read_json(request, read_queries.list_nodes, state, search, limit, offset, visible)


@router.get("/nodes/{agent_id}", summary="One node with its findings and latest evidence")
async def node(request: Request, agent_id: str, person: Person) -> Dict[str, Any]:
    found = await _read(request, read_queries.get_node, agent_id, person.tenant_filter(agents.c.tenant))
    if found is None:  # another tenant's node is as absent as one that does not exist
        raise refuse(404, "not_found", f"no node {agent_id!r}")
    found["findings_detail"] = await _read(request, read_queries.list_findings, agent_id)
    found["evidence"] = await _read(request, read_queries.latest, agent_id)
    result: Dict[str, Any] = found
    return result


@router.get("/findings", summary="Findings across the fleet, failing first")
async def findings(
    request: Request,
    person: Person,
    status: Optional[str] = Query(None, description="one of " + ", ".join(STATUSES)),
    control: Optional[str] = Query(None, description="a control id, M01 to M13"),
    rule: Optional[str] = Query(None, description="a rule id"),
    node: Optional[str] = Query(None, description="an agent id"),
    limit: int = Query(1000, ge=1, le=10000),
    offset: Offset = 0,
) -> List[Dict[str, Any]]:
    status = _one_of("status", status, STATUSES)
    control = _control(control)
    rule = _text("rule", rule, 64)
    node = _text("node", node, 64)
    visible = person.tenant_filter(agents.c.tenant)
    result: List[Dict[str, Any]] = await _read(
        request, read_queries.list_findings, node, status, control, rule, limit, offset, visible
    )
    return result


@router.get(
    "/controls/status",
    summary="A status per control and tenant: the worst of the tenant's nodes, with their counts",
)
async def controls_status(
    request: Request,
    person: Person,
    tenant: Optional[str] = Query(None, description="only this tenant"),
) -> List[Dict[str, Any]]:
    tenant = _text("tenant", tenant, 128)
    visible = person.tenant_filter(agents.c.tenant)
    result: List[Dict[str, Any]] = await _read(request, control_status.status_by_tenant, visible, tenant)
    return result


@router.get("/controls", summary="The control catalogue M01-M13 with ISO 27001 and GDPR references")
async def controls() -> List[Dict[str, Any]]:
    return [
        {"id": c.id, "title": c.title, "summary": c.summary, "iso27001": list(c.iso27001), "gdpr": list(c.gdpr)}
        for c in CONTROLS.values()
    ]


@router.get("/policy", summary="The rules in force")
async def policy(request: Request) -> Dict[str, Any]:
    holder = _centre(request).policy
    return {
        "source": str(holder.path),
        "last_error": holder.last_error,
        "rules": [
            {
                "id": r.id,
                "version": r.version,
                "title": r.title,
                "controls": list(r.controls),
                "severity": r.severity,
                "collector": r.collector,
                "max_age_s": r.max_age_s,
                "enabled": r.enabled,
                "iso27001": list(r.iso27001),
                "gdpr": list(r.gdpr),
                "rationale": r.rationale,
                "remediation": r.remediation,
            }
            for r in holder.policy.rules
        ],
        "overrides": [
            {
                "name": o.name,
                "match": {"tenant": o.tenant, "group": o.group, "labels": dict(o.labels)},
                "rules": {k: dict(v) for k, v in o.changes.items()},
            }
            for o in holder.policy.overrides
        ],
    }


@router.get("/conflicts", summary="Enrolments that look like cloned machines")
async def conflicts(request: Request, person: Person) -> List[Dict[str, Any]]:
    if not person.at_least("admin"):
        raise refuse(403, "forbidden", f"this needs the admin role; {person.username} is {person.role}")
    # an admin of some tenants sees the conflicts between their own nodes only (M10)
    result: List[Dict[str, Any]] = await _read(request, enrolment.conflicts, person.tenant_filter)
    return result
