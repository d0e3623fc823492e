"""UTCDateTime reads SQLite's text in one step: the same aware UTC datetimes as the general way."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy.dialects import sqlite

from central.db.types import UTCDateTime


@pytest.mark.parametrize(
    "stored",
    [
        "2026-11-27 21:53:50.421521",  # as SQLAlchemy writes it
        "2026-11-27 21:53:50",
        "2026-11-27T21:53:50.000100",
        "2026-11-27 23:53:50+02:00",  # a zone of its own: converted, not replaced
        "2026-11-27T21:53:50Z",
    ],
)
def test_sqlite_text_is_read_as_aware_utc(stored: str) -> None:
    dialect = sqlite.dialect()
    fast = UTCDateTime().result_processor(dialect, None)
    parsed = datetime.fromisoformat(stored.replace("Z", "+00:00"))
    expected = UTCDateTime().process_result_value(parsed, dialect)
    assert fast(stored) == expected and fast(stored).tzinfo is timezone.utc
    assert fast(None) is None
