"""Helpers shared by the database tests (tests import helpers, never other test modules)."""

from __future__ import annotations

from typing import Any, Dict, List

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from central.db import report_bodies
from central.db.engine import read_tx
from central.db.schema import evidence_blobs, metadata
from central.runtime.service import Centre


def schema_differences(centre: Centre) -> List[Any]:
    """What the migrated database has that the schema lacks, or lacks that it has."""
    with centre.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        return [d for d in compare_metadata(context, metadata) if not _alembic_own(d)]


def _alembic_own(difference: Any) -> bool:
    """Alembic's own version table is in the database, not in the metadata."""
    return bool(difference[0] == "remove_table" and difference[1].name == "alembic_version")


def stored_pieces(centre: Centre, agent_id: str) -> Dict[bytes, bytes]:
    """A node's stored pieces of evidence, by digest, unpacked."""
    with read_tx(centre.engine) as conn:
        rows = conn.execute(
            select(evidence_blobs.c.digest, evidence_blobs.c.data).where(evidence_blobs.c.agent_id == agent_id)
        ).all()
    return {bytes(d): report_bodies.unpack_piece(bytes(data)) for d, data in rows}
