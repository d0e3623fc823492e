"""Incidents (list, timeline, acknowledge), maintenance windows and waivers (API key required)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Callable, Dict, List, Optional

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from central.alerting import manage
from central.api.refusals import refusals
from central.auth.deps import principal, require
from central.auth.principal import Principal
from central.auth.tenants import within_tenants
from central.clock import utcnow
from central.db.engine import read_tx, write_tx
from central.request_params import Before, IncidentId
from central.request_refused import refuse
from central.runtime.service import Centre

router = APIRouter(prefix="/api/v1", tags=["alerting"], responses=refusals(401, 403, 404))
Key = Annotated[Principal, Depends(principal)]
"""The caller (API key or dashboard session); recorded as who did it."""
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AckBody(_Body):
    note: Optional[str] = Field(None, max_length=2000)


class ScopeBody(_Body):
    agent_id: Optional[str] = Field(None, max_length=64)
    group: Optional[str] = Field(None, max_length=128)
    tenant: Optional[str] = Field(None, max_length=128)


class WindowBody(ScopeBody):
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(max_length=2000)
    allows: List[str] = Field(default_factory=list, description="rule ids allowed to deviate during the window")


class WaiverBody(ScopeBody):
    rule_id: str = Field(max_length=64)
    justification: str = Field(max_length=4000)
    approver: str = Field(max_length=128)
    expires_at: datetime


def _centre(request: Request) -> Centre:
    centre: Centre = request.app.state.centre
    return centre


async def _write(
    request: Request,
    person: Principal,
    fn: Callable[..., Any],
    *args: Any,
    scope: Optional[manage.Scope] = None,
    incident_id: Optional[int] = None,
) -> Any:
    centre = _centre(request)
    source = request.client.host if request.client else None

    def work() -> Any:
        with write_tx(centre.engine) as conn:
            within_tenants(conn, person, scope, incident_id)
            return fn(conn, utcnow(), person.actor, *args, source=source)

    try:
        return await run_in_threadpool(work)
    except manage.ManageError as err:
        raise refuse(400, "refused", str(err)) from err


async def _read(request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    centre = _centre(request)

    def work() -> Any:
        with read_tx(centre.engine) as conn:
            return fn(conn, *args, **kwargs)

    return await run_in_threadpool(work)


async def _scope_of(request: Request, kind: str, item_id: str) -> manage.Scope:
    scope: manage.Scope = await _read(request, manage.scope_of, kind, item_id)
    return scope


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise refuse(400, "malformed", "times need a zone, e.g. 2026-11-27T22:00:00Z")
    return moment


@router.get("/incidents", summary="Incidents, newest first")
async def incidents(
    request: Request,
    _key: Key,
    status: Optional[str] = Query(None, pattern="^(open|resolved)$"),
    node: Optional[str] = Query(None, max_length=64),
    limit: int = Query(1000, ge=1, le=10000),
    before: Optional[Before] = None,
) -> List[Dict[str, Any]]:
    """At most ``limit``; the next page is ``before=<the last id>``.  Filtered by tenant in the
    query, so another tenant's incidents never crowd out one's own."""
    rows: List[Dict[str, Any]] = await _read(
        request, manage.list_incidents, status, node, limit, before=before, visible=_key.tenant_filter
    )
    return rows


@router.get("/incidents/{incident_id}", summary="One incident with its timeline")
async def incident(request: Request, incident_id: IncidentId, _key: Key) -> Dict[str, Any]:
    found: Optional[Dict[str, Any]] = await _read(request, manage.get_incident, incident_id, _key.tenant_filter)
    if found is None:
        raise refuse(404, "not_found", f"no incident {incident_id}")
    return found


@router.post("/incidents/{incident_id}/ack", summary="Acknowledge an incident (recorded with who)")
async def ack(request: Request, incident_id: IncidentId, body: AckBody, key: Operator) -> Dict[str, Any]:
    def fn(conn: Any, now: datetime, actor: str, *, source: Optional[str]) -> None:
        manage.ack(conn, now, actor, incident_id, body.note, source)

    await _write(request, key, fn, incident_id=incident_id)
    return {"ok": True, "incident": incident_id}


@router.get("/windows", summary="Maintenance windows")
async def windows(request: Request, _key: Key) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = await _read(request, manage.list_windows)
    return [r for r in rows if _key.tenants is None or _key.sees(r.get("node_tenant") or r.get("tenant"))]


@router.post("/windows", summary="Declare a maintenance window (holds alerts; may allow named rules)")
async def create_window(request: Request, body: WindowBody, key: Operator) -> Dict[str, Any]:
    scope = manage.Scope(body.agent_id, body.group, body.tenant)

    def fn(conn: Any, now: datetime, actor: str, *, source: Optional[str]) -> str:
        return manage.create_window(
            conn, now, actor, scope, _aware(body.starts_at), _aware(body.ends_at), body.reason, body.allows, source
        )

    return {"id": await _write(request, key, fn, scope=scope)}


@router.post("/windows/{window_id}/cancel", summary="End a maintenance window now")
async def cancel_window(request: Request, window_id: str, key: Operator) -> Dict[str, Any]:
    await _write(request, key, manage.cancel_window, window_id, scope=await _scope_of(request, "window", window_id))
    return {"ok": True}


@router.get("/waivers", summary="Waivers")
async def waivers(request: Request, _key: Key) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = await _read(request, manage.list_waivers)
    return [r for r in rows if _key.tenants is None or _key.sees(r.get("node_tenant") or r.get("tenant"))]


@router.post("/waivers", summary="Accept a deviation until a date, with a justification and an approver")
async def create_waiver(request: Request, body: WaiverBody, key: Admin) -> Dict[str, Any]:
    scope = manage.Scope(body.agent_id, body.group, body.tenant)

    def fn(conn: Any, now: datetime, actor: str, *, source: Optional[str]) -> str:
        return manage.create_waiver(
            conn, now, actor, scope, body.rule_id, body.justification, body.approver, _aware(body.expires_at), source
        )

    return {"id": await _write(request, key, fn, scope=scope)}


@router.post("/waivers/{waiver_id}/revoke", summary="Withdraw a waiver now")
async def revoke_waiver(request: Request, waiver_id: str, key: Admin) -> Dict[str, Any]:
    await _write(request, key, manage.revoke_waiver, waiver_id, scope=await _scope_of(request, "waiver", waiver_id))
    return {"ok": True}
