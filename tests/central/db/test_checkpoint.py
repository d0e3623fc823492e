"""SQLite's WAL checkpoints run in their own thread while a centre serves, not inside the commits
of the agents' requests (central/db/checkpoint.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from central.db.engine import write_tx
from central.runtime.service import Centre, open_centre
from tests.central.conftest import make_config


def _serving(tmp_path: Path, database_url: str) -> Centre:
    """A centre with its background threads started (the duties' own rounds an hour apart)."""
    centre = open_centre(make_config(tmp_path, database_url, duty_interval_s=3600))
    centre.start_duties()
    return centre


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_commits_do_not_checkpoint_while_serving_and_the_thread_does(database_url: str, tmp_path: Path) -> None:
    idle = open_centre(make_config(tmp_path, database_url))
    with idle.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000  # SQLite's default
    idle.stop()
    centre = _serving(tmp_path, database_url)
    assert centre.checkpointer is not None
    with centre.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    with write_tx(centre.engine) as conn:  # about 2,500 pages of 4 KiB: past the 1,000-page default
        conn.execute(text("CREATE TABLE filler (v BLOB)"))
        conn.execute(text("INSERT INTO filler VALUES (:v)"), [{"v": b"x" * 4000} for _ in range(2500)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        last = centre.checkpointer.last
        if last is not None and last[1] >= 2500 and last[2] == last[1]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the checkpointer did not checkpoint the log: {centre.checkpointer.last}")
    centre.stop()
    assert centre.checkpointer is None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_needs_no_checkpointer(database_url: str, tmp_path: Path) -> None:
    centre = _serving(tmp_path, database_url)
    try:
        assert centre.checkpointer is None and centre.evaluator is not None
    finally:
        centre.stop()
