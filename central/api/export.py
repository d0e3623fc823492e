"""The auditor's export over HTTP: the same report as ``tillsyn-central export``, for a granted tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from central import audit
from central.api.refusals import refusals
from central.auth.deps import principal
from central.auth.principal import Principal
from central.clock import utcnow
from central.db.engine import snapshot_tx, write_tx
from central.enrolment import check_name
from central.export import settled
from central.export.build import build
from central.export.html import to_html
from central.export.model import ExportError, parse_time
from central.export.model import Request as ExportRequest
from central.export.render import to_csv, to_json
from central.request_refused import refuse

router = APIRouter(prefix="/api/v1", tags=["export"], responses=refusals(401, 403, 404, 409))
MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


def _time(name: str, value: Optional[str]) -> Optional[datetime]:
    """A time with its zone, read as the CLI reads it."""
    if value is None:
        return None
    try:
        return parse_time(value, name)
    except ExportError as err:
        raise refuse(422, "malformed", str(err)) from err


@router.get("/export", summary="The auditor's export of a tenant at a moment or over a period (json, csv, html)")
async def export(
    request: Request,
    person: Annotated[Principal, Depends(principal)],
    tenant: Optional[str] = Query(None, max_length=128, description="a tenant you are granted; omit for all"),
    at: Optional[str] = Query(None, description="a moment (default: now)"),
    start: Optional[str] = Query(None, alias="from", description="start of a period"),
    end: Optional[str] = Query(None, alias="to", description="end of a period"),
    format: str = Query("json", pattern="^(json|csv|html)$"),
) -> Response:
    tenant = tenant or None  # the dashboard's "every tenant" sends an empty value
    try:
        check_name("tenant", tenant)  # also what a file name and header can carry
    except ValueError as err:
        raise refuse(422, "malformed", str(err)) from err
    if tenant is None and person.tenants is not None:
        raise refuse(403, "forbidden", "name one of your tenants (tenant=...)")
    if tenant is not None and not person.sees(tenant):
        raise refuse(404, "not_found", f"no tenant {tenant!r}")
    moment = _time("to", end) or _time("at", at) or utcnow()
    try:
        req = ExportRequest(moment, _time("from", start), tenant)
    except ExportError as err:
        raise refuse(422, "malformed", str(err)) from err
    centre = request.app.state.centre

    def work() -> Any:
        with snapshot_tx(centre.engine) as conn:
            try:  # a moment the centre has not finished judging yet: refused, or for "now" moved back
                given = "to" if end else "at" if at else None
                settled_req = settled.settle(req, settled.pending(conn, req.tenant), given)
                data = build(conn, settled_req, centre.policy.policy, centre.config.retention)
            except ExportError as err:
                raise refuse(409, "not_judged_yet", str(err)) from err
        body = {"json": to_json, "csv": to_csv, "html": to_html}[format](data)
        # recorded once the export is made: a request that fails leaves no entry claiming one
        with write_tx(centre.engine) as conn:
            audit.record(
                conn,
                utcnow(),
                person.actor,
                "export",
                tenant or "*",
                {"format": format, "at": moment.isoformat(), "from": start},
                request.client.host if request.client else None,
            )
        return body

    body = await run_in_threadpool(work)
    name = f"tillsyn-export-{tenant or 'all'}-{moment:%Y%m%dT%H%M%SZ}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "html":
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return Response(body, media_type=MEDIA[format], headers=headers)
