"""Conditions on JSON list columns that run in the database, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB


def json_list_has(column: Any, value: str, dialect: str) -> ColumnElement[bool]:
    """True where the JSON list in ``column`` has ``value`` as one of its items (exact match)."""
    if dialect == "postgresql":
        return cast(column, JSONB).contains([value])
    items = func.json_each(column).table_valued("value")
    return select(items.c.value).where(items.c.value == value).exists()
