"""The migrations build the schema the code queries: after ``upgrade`` to head, Alembic finds no
table, column or index of ``central.db.schema`` missing or different in the database (a migration
forgotten or written differently from the table it changes)."""

from __future__ import annotations

from central.runtime.service import Centre
from tests.central.db.helpers import schema_differences


def test_upgraded_database_has_every_table_column_and_index_of_the_schema(centre: Centre) -> None:
    assert schema_differences(centre) == []
