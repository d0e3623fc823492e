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

import logging
import zlib
from typing import Tuple

import sqlalchemy as sa
from alembic import op

from central.db import report_bodies

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_BATCH = 500
log = logging.getLogger(__name__)

_reports = sa.table(
    "reports", sa.column("id", sa.BigInteger), sa.column("agent_id", sa.String), sa.column("body", sa.LargeBinary)
)
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
    bodies = report_bodies.Bodies(conn)
    after = -1
    while True:  # in batches of ids, each body read through its pieces before any piece is repacked
        rows = conn.execute(
            sa.select(_reports.c.id, _reports.c.agent_id, _reports.c.body)
            .where(_reports.c.id > after)
            .order_by(_reports.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        for row in rows:
            stored = bytes(row.body)
            if not stored.startswith(report_bodies.MAGIC2):
                continue
            try:
                old = bodies.as_tsk1(row.agent_id, stored)
            except report_bodies.UnreadableBody as err:  # unreadable to either version: verify names it
                log.warning("report %s of node %s left as it is: %s", row.id, row.agent_id, err)
                continue
            conn.execute(sa.update(_reports).where(_reports.c.id == row.id).values(body=old))
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
