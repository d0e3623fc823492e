"""PostgreSQL: the tables ingest writes all the time are not truncated by autovacuum (migration
0007: the truncation's ACCESS EXCLUSIVE lock held the agents' requests up for hundreds of ms)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from central.db import migrate
from central.runtime.service import Centre

TABLES = {"agents", "pending_evaluation", "reports", "findings", "latest_evidence"}


def _without_truncate(engine: Engine) -> set[str]:
    """Tables whose own pages and whose TOAST table's pages (if it has one) autovacuum keeps."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.relname FROM pg_class t LEFT JOIN pg_class toast ON toast.oid = t.reltoastrelid "
                "WHERE t.relkind = 'r' AND 'vacuum_truncate=false' = ANY(t.reloptions) "
                "AND (t.reltoastrelid = 0 OR 'vacuum_truncate=false' = ANY(toast.reloptions))"
            )
        ).scalars()
        return set(rows)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_hot_tables_keep_their_pages_and_the_migration_reverses(centre: Centre, tmp_path: Path) -> None:
    assert _without_truncate(centre.engine) == TABLES
    with centre.engine.connect() as conn:
        command.downgrade(migrate._config(conn), "0006")
        conn.commit()
    assert _without_truncate(centre.engine) == set()
    migrate.upgrade(centre.engine)
    assert _without_truncate(centre.engine) == TABLES


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_upgrades_through_it_unchanged(centre: Centre) -> None:
    assert migrate.current(centre.engine) == migrate.head() >= "0007"  # through it, and any later
