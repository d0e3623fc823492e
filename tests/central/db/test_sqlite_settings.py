"""The embedded database's settings that the centre's promises rest on (docs/protocol.md)."""

from __future__ import annotations

from pathlib import Path

from central.db.engine import make_engine


def test_a_commit_on_sqlite_is_synced_and_writers_queue(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'central.db'}")
    try:
        with engine.connect() as conn:
            pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in ("journal_mode", "synchronous")}
            more = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in ("busy_timeout", "foreign_keys")}
    finally:
        engine.dispose()
    # FULL (2): an acknowledged report survives a power failure, not only a killed process
    assert pragma == {"journal_mode": "wal", "synchronous": 2}
    assert more == {"busy_timeout": 10000, "foreign_keys": 1}
