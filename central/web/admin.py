"""The audit trail for admins of every tenant: newest first, and as CSV for whoever audits the
auditors (M09).  An admin of some tenants is refused: the trail names every tenant's nodes,
waivers, windows, exports and people (M10)."""

from __future__ import annotations

import csv
import io
import json
from typing import Iterator, Optional

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Engine

from central import audit
from central.db.engine import read_tx
from central.web.common import AuditReader, centre_of, read
from central.web.render import page, secure

router = APIRouter(include_in_schema=False)
CSV_PAGE = 5000
COLUMNS = ("id", "at", "actor", "action", "object", "detail", "source")


@router.get("/admin/audit")
async def audit_page(request: Request, who: AuditReader, limit: int = Query(500, ge=1, le=5000)) -> Response:
    rows = await read(request, audit.entries, limit)
    return page(request, "audit.html", who, rows=rows, limit=limit)


def _cell(value: object) -> str:
    """A spreadsheet must not run a cell as a formula (CSV injection): prefix those with a quote."""
    text = "" if value is None else json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_lines(engine: Engine) -> Iterator[str]:
    """The whole trail, newest first, read a page at a time (each in its own short transaction)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    before: Optional[int] = None
    while True:
        with read_tx(engine) as conn:
            rows = audit.entries(conn, CSV_PAGE, before)
        for row in rows:
            writer.writerow([_cell(row["at"].isoformat()) if c == "at" else _cell(row[c]) for c in COLUMNS])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(rows) < CSV_PAGE:
            return
        before = rows[-1]["id"]


@router.get("/admin/audit.csv")
async def audit_csv(request: Request, who: AuditReader) -> Response:
    """Every entry of the trail (retention decides how far back it goes), streamed."""
    response = StreamingResponse(_csv_lines(centre_of(request).engine), media_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="tillsyn-audit.csv"'
    return secure(response)
