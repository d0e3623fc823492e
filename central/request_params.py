"""Bounds on integers taken from paths and query strings: a number no database column can hold
is refused like any other malformed parameter, before it reaches a query (where SQLite raises
OverflowError and PostgreSQL an out-of-range error, either a 500)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from central.identifiers import ROW_MAX

IncidentId = Annotated[int, Path(ge=1, le=ROW_MAX, description="an incident's id")]
Offset = Annotated[int, Query(ge=0, le=ROW_MAX, description="rows to skip")]
Before = Annotated[int, Query(ge=1, le=ROW_MAX, description="only ids below this one (the next page)")]
