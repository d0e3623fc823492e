"""Incidents (timeline, acknowledge), waivers and maintenance windows as pages and forms.

Writes go through central.alerting.manage inside one transaction, after the same tenant check the
API makes (``within_tenants``); the CSRF token was checked when the person was resolved.
"""

from __future__ import annotations

from datetime import datetime, time, timezone
from typing import Annotated, Any, Callable, Dict, List

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from central.alerting import manage
from central.auth.principal import Principal
from central.auth.tenants import within_tenants
from central.clock import utcnow
from central.request_params import IncidentId
from central.web.common import Admin, Operator, fields, person, read, source, write
from central.web.render import page, redirect

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(person)]


def _mine(who: Principal, rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [r for r in rows if who.tenants is None or who.sees(r.get("node_tenant") or r.get("tenant"))]


def _refused(request: Request, who: Principal, message: str, status: int = 400) -> Response:
    return page(request, "error.html", who, status, title="Not done", message=message)


async def _act(
    request: Request, who: Principal, work: Callable[[Connection, datetime], Any], back: str, **check: Any
) -> Response:
    def run(conn: Connection) -> Any:
        within_tenants(conn, who, check.get("scope"), check.get("incident_id"))
        return work(conn, utcnow())

    try:
        await write(request, run)
    except manage.ManageError as err:
        return _refused(request, who, str(err))
    return redirect(back)


# --- incidents -------------------------------------------------------------------------------------


OPEN_SHOWN = 2000
PAST_SHOWN = 200


@router.get("/incidents")
async def incidents(request: Request, who: Person) -> Response:
    """Every open incident of the person's tenants (up to OPEN_SHOWN), then the newest past ones;
    the headings give the whole counts, so nothing left out goes unsaid."""

    def load(conn: Connection) -> Dict[str, Any]:
        mine = who.tenant_filter
        return {
            "open": manage.list_incidents(conn, "open", limit=OPEN_SHOWN, visible=mine),
            "past": manage.list_incidents(conn, "resolved", limit=PAST_SHOWN, visible=mine),
            "counts": manage.count_incidents(conn, visible=mine),
        }

    return page(request, "incidents.html", who, **await read(request, load))


@router.get("/incidents/{incident_id}")
async def incident(request: Request, incident_id: IncidentId, who: Person) -> Response:
    found = await read(request, manage.get_incident, incident_id, who.tenant_filter)
    if found is None:
        return page(request, "error.html", who, 404, title="Not found", message=f"There is no incident {incident_id}.")
    return page(request, "incident.html", who, incident=found)


@router.post("/incidents/{incident_id}/ack")
async def acknowledge(request: Request, incident_id: IncidentId, who: Operator) -> Response:
    note = (await fields(request)).get("note", "").strip()[:2000] or None

    def work(conn: Connection, now: datetime) -> None:
        manage.ack(conn, now, who.actor, incident_id, note, source(request))

    return await _act(request, who, work, f"/incidents/{incident_id}", incident_id=incident_id)


# --- waivers and maintenance windows ---------------------------------------------------------------


def _scope(form: Dict[str, str]) -> manage.Scope:
    return manage.Scope(
        form.get("agent_id", "").strip()[:64] or None,
        form.get("group", "").strip()[:128] or None,
        form.get("tenant", "").strip()[:128] or None,
    )


def _moment(value: str, end_of_day: bool = False) -> datetime:
    """A date (``2026-12-31``) or ``datetime-local`` value, read as UTC (the dashboard says so)."""
    value = value.strip()
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").date()
            return datetime.combine(day, time(23, 59, 59) if end_of_day else time(0, 0), timezone.utc)
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    except ValueError as err:
        raise manage.ManageError(f"{value[:40]!r} is not a date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM)") from err


async def _existing_scope(request: Request, kind: str, item_id: str) -> manage.Scope:
    scope: manage.Scope = await read(request, manage.scope_of, kind, item_id)  # refused by within_tenants if NOWHERE
    return scope


@router.get("/waivers")
async def waivers(request: Request, who: Person) -> Response:
    rows = _mine(who, await read(request, manage.list_waivers))
    now = utcnow()
    prefill = {k: request.query_params.get(k, "")[:128] for k in ("agent_id", "rule_id", "tenant")}
    return page(request, "waivers.html", who, rows=rows, now=now, prefill=prefill)


@router.post("/waivers")
async def create_waiver(request: Request, who: Admin) -> Response:
    form = await fields(request)
    scope = _scope(form)

    def work(conn: Connection, now: datetime) -> str:
        expires = _moment(form.get("expires_at", ""), end_of_day=True)
        return manage.create_waiver(
            conn,
            now,
            who.actor,
            scope,
            form.get("rule_id", "").strip()[:64],
            form.get("justification", ""),
            form.get("approver", "")[:128],
            expires,
            source(request),
        )

    back = f"/nodes/{scope.agent_id}" if scope.agent_id else "/waivers"
    return await _act(request, who, work, back, scope=scope)


@router.post("/waivers/{waiver_id}/revoke")
async def revoke_waiver(request: Request, waiver_id: str, who: Admin) -> Response:
    scope = await _existing_scope(request, "waiver", waiver_id)

    def work(conn: Connection, now: datetime) -> None:
        manage.revoke_waiver(conn, now, who.actor, waiver_id, source(request))

    return await _act(request, who, work, "/waivers", scope=scope)


@router.get("/windows")
async def windows(request: Request, who: Person) -> Response:
    rows = _mine(who, await read(request, manage.list_windows))
    prefill = {k: request.query_params.get(k, "")[:128] for k in ("agent_id", "tenant")}
    return page(request, "windows.html", who, rows=rows, now=utcnow(), prefill=prefill)


@router.post("/windows")
async def create_window(request: Request, who: Operator) -> Response:
    form = await fields(request)
    scope = _scope(form)
    allows = [a.strip()[:64] for a in form.get("allows", "").split(",") if a.strip()]

    def work(conn: Connection, now: datetime) -> str:
        starts, ends = _moment(form.get("starts_at", "")), _moment(form.get("ends_at", ""), end_of_day=True)
        return manage.create_window(
            conn, now, who.actor, scope, starts, ends, form.get("reason", ""), allows, source(request)
        )

    return await _act(request, who, work, "/windows", scope=scope)


@router.post("/windows/{window_id}/cancel")
async def cancel_window(request: Request, window_id: str, who: Operator) -> Response:
    scope = await _existing_scope(request, "window", window_id)

    def work(conn: Connection, now: datetime) -> None:
        manage.cancel_window(conn, now, who.actor, window_id, source(request))

    return await _act(request, who, work, "/windows", scope=scope)
