"""The centre's one clock: aware UTC datetimes, so no naive time reaches the database."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
