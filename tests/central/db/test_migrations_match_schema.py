"""The migrations build the schema the code queries: after ``upgrade`` to head, Alembic finds no
table, column or index of ``central.db.schema`` missing or different in the database (a migration
forgotten or written differently from the table it changes)."""

from __future__ import annotations

from typing import Any, List

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from central.db.schema import metadata
from central.runtime.service import Centre


def _differences(centre: Centre) -> List[Any]:
    with centre.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        return [d for d in compare_metadata(context, metadata) if not _alembic_own(d)]


def _alembic_own(difference: Any) -> bool:
    """Alembic's own version table is in the database, not in the metadata."""
    return bool(difference[0] == "remove_table" and difference[1].name == "alembic_version")


def test_upgraded_database_has_every_table_column_and_index_of_the_schema(centre: Centre) -> None:
    assert _differences(centre) == []
