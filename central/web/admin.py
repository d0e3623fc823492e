"""The audit trail for admins: newest first, and as CSV for whoever audits the auditors (M09)."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from central import audit
from central.auth.principal import Principal
from central.web.common import needs, person, read
from central.web.render import page, secure

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(person)]
CSV_LIMIT = 100000


@router.get("/admin/audit")
async def audit_page(request: Request, who: Person, limit: int = Query(500, ge=1, le=5000)) -> Response:
    refused = needs(request, who, "admin")
    if refused:
        return refused
    rows = await read(request, audit.entries, limit)
    return page(request, "audit.html", who, rows=rows, limit=limit)


def _cell(value: object) -> str:
    """A spreadsheet must not run a cell as a formula (CSV injection): prefix those with a quote."""
    text = "" if value is None else json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/admin/audit.csv")
async def audit_csv(request: Request, who: Person) -> Response:
    refused = needs(request, who, "admin")
    if refused:
        return refused
    rows = await read(request, audit.entries, CSV_LIMIT)
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ("id", "at", "actor", "action", "object", "detail", "source")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row["at"].isoformat()) if c == "at" else _cell(row[c]) for c in columns])
    response = Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="tillsyn-audit.csv"'
    return secure(response)
