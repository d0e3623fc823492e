"""Report bodies in the tsk2 format: no change to the tables, a revision for the centres that cannot read it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 16:40:00.000000

Since this revision the centre stores report bodies as tsk2 skeletons compressed against a
dictionary piece of their node, and pieces compressed with a preset dictionary
(central/db/report_bodies.py). A centre of an earlier version cannot read either: its evaluator
would count such reports unreadable, and its ``verify`` and export would see changed bodies. The
tables do not change; the revision is there so that such a centre refuses this database when it
starts ("the database's schema is at revision 0015, which this version of tillsyn-central does not
know"), and a release with it is installed as one with a migration (docs/operations.md, "Upgrades
with replicas").

The downgrade puts back what an earlier centre reads: every tsk2 skeleton is stored as the tsk1
skeleton of the same parts (the same pieces; the small records it kept inline become literals, so
the ledger grows to about what 0011 stored, twice the tsk2 size), checked to read back the same
bytes, and every piece compressed with the preset dictionary is compressed again without it. A body
that cannot be read is left as it is (it is unreadable to either version, and ``verify`` names it).
Dictionary pieces no body refers to any more stay until retention prunes them.
"""

from __future__ import annotations

import zlib
from typing import Tuple

import sqlalchemy as sa
from alembic import op

from central.db import report_bodies
from central.db.migrations.bodies import rewrite

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_BATCH = 500
_pieces = sa.table(
    "evidence_blobs",
    sa.column("agent_id", sa.String),
    sa.column("digest", sa.LargeBinary),
    sa.column("data", sa.LargeBinary),
)


def upgrade() -> None:
    pass


def downgrade() -> None:
    conn = op.get_bind()
    rewrite(conn, report_bodies.MAGIC2, report_bodies.Bodies.as_tsk1)  # each body read before any piece is repacked
    last: Tuple[str, bytes] = ("", b"")
    while True:  # the pieces in batches of (node, digest)
        pieces = conn.execute(
            sa.select(_pieces.c.agent_id, _pieces.c.digest, _pieces.c.data)
            .where(sa.tuple_(_pieces.c.agent_id, _pieces.c.digest) > sa.tuple_(*last))
            .order_by(_pieces.c.agent_id, _pieces.c.digest)
            .limit(_BATCH)
        ).all()
        if not pieces:
            break
        last = (pieces[-1].agent_id, bytes(pieces[-1].digest))
        for piece in pieces:
            data = bytes(piece.data)
            if len(data) >= 2 and data[1] & 0x20:  # FDICT: packed with the preset dictionary
                conn.execute(
                    sa.update(_pieces)
                    .where(_pieces.c.agent_id == piece.agent_id, _pieces.c.digest == piece.digest)
                    .values(data=zlib.compress(report_bodies.unpack_piece(data), 6))
                )
