"""reports.prev_hash no longer stored: the previous entry's hash is derived where it is needed

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 20:00:00.000000

Each report's row held the hash of the entry before it in its node's chain (32 bytes since 0016, 33
with its length on PostgreSQL, about 9 KB per node-day), which is always that entry's own stored
``entry_hash``: of entry ``chain_index - 1``, of the retention checkpoint (``ledger_checkpoints``)
for the first entry after pruning, or genesis (64 zeros) for entry 1. ``verify`` recomputes each
entry's hash from the stored hash of the entry before it (central/ingest/ledger.py) and the export
derives each cited report's ``prev_hash`` the same way (central/export/ledger_refs.py), so neither
what the chain proves nor what the export lists changes.

On SQLite the table is rebuilt without the column (Alembic's batch mode; the index over the report
ids' first characters, which the rebuild would not carry over, is made again). On PostgreSQL the
column is dropped at once; rows written before keep its bytes until they are rewritten (``VACUUM
FULL reports``, or as retention deletes them).

The downgrade adds the column back and fills it for every row, in batches of 2,000 rows: the
``entry_hash`` of the node's row before it in chain order, else (the first row kept) the checkpoint's
``entry_hash``, else genesis; these are the values ingest wrote. A chain someone removed rows from
cannot be given back what those rows' successors held: they get the hash of the row now before them.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_BATCH = 2000
_REPORT_KEY = 7
"""central/db/schema.py's REPORT_KEY when this revision was made (a migration keeps its own copy)."""
_GENESIS = "0" * 64
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _hex_in(value: str) -> bytes:
    """A hash as central/db/types.py's HexDigest stores it (0016): 32 bytes, or other text as it is."""
    return bytes.fromhex(value) if _HEX64.fullmatch(value) else value.encode("utf-8")


def _rebuilt_on_sqlite(change: str) -> None:
    """Alembic's batch mode rebuilds the table on SQLite without the expression index (it cannot
    reflect it): drop it first, make it again after. (central/db/migrate.py turns SQLite's foreign
    keys off meanwhile, so dropping the old table leaves the evaluation queue as it is.)"""
    op.drop_index("ix_reports_report_key", "reports")
    order: List[Tuple[str, ...]] = []
    if change != "drop":  # put back where 0017 had it, after chain_index (PostgreSQL appends it)
        names = [c["name"] for c in sa.inspect(op.get_bind()).get_columns("reports") if c["name"] != "prev_hash"]
        names.insert(names.index("chain_index") + 1, "prev_hash")
        order.append(tuple(names))
    with op.batch_alter_table("reports", recreate="always", partial_reordering=order) as batch:
        if change == "drop":
            batch.drop_column("prev_hash")
        else:
            batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
    op.create_index("ix_reports_report_key", "reports", [sa.text(f"substr(report_id, 1, {_REPORT_KEY})")])


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("reports", "prev_hash")
    else:
        _rebuilt_on_sqlite("drop")


def _fill() -> None:
    """Every row's prev_hash, in batches of ids: the row before it in its node's chain (one lookup
    through uq_reports_agent_chain), then the first row of each node from its checkpoint or genesis."""
    conn = op.get_bind()
    before = sa.text(
        "UPDATE reports SET prev_hash = (SELECT p.entry_hash FROM reports AS p "
        "WHERE p.agent_id = reports.agent_id AND p.chain_index < reports.chain_index "
        "ORDER BY p.chain_index DESC LIMIT 1) WHERE id > :low AND id <= :high"
    )
    top: Optional[int] = conn.execute(sa.text("SELECT MAX(id) FROM reports")).scalar()
    low = 0 if top is None else int(conn.execute(sa.text("SELECT MIN(id) FROM reports")).scalar_one()) - 1
    while top is not None and low < top:
        conn.execute(before, {"low": low, "high": low + _BATCH})
        low += _BATCH
    marks = {
        agent_id: digest
        for agent_id, digest in conn.execute(sa.text("SELECT agent_id, entry_hash FROM ledger_checkpoints"))
    }
    first = conn.execute(sa.text("SELECT id, agent_id, chain_index FROM reports WHERE prev_hash IS NULL")).all()
    change = sa.text("UPDATE reports SET prev_hash = :prev WHERE id = :key")
    values = [
        {"key": key, "prev": _hex_in(_GENESIS if index == 1 else marks.get(agent_id, _GENESIS))}
        for key, agent_id, index in first
    ]
    for i in range(0, len(values), _BATCH):
        conn.execute(change, values[i : i + _BATCH])


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    # as 0016 left it (0017 changed no table): bytea on PostgreSQL; on SQLite its declared type, holding the bytes
    op.add_column("reports", sa.Column("prev_hash", sa.LargeBinary() if postgresql else sa.String(64), nullable=True))
    _fill()
    if postgresql:
        op.alter_column("reports", "prev_hash", existing_type=sa.LargeBinary(), nullable=False)
    else:
        _rebuilt_on_sqlite("not null")
