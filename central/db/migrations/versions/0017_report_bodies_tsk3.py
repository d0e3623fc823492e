"""Report bodies in the tsk3 format: no change to the tables, a revision for the centres that cannot read it

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 20:10:00.000000

Since this revision the centre stores report bodies as tsk3 skeletons, which name their node's
dictionary piece by the first 8 bytes of its SHA-256 instead of all 32 (24 bytes less a report,
about 6.6 KB per node-day; central/db/report_bodies.py). A centre of an earlier version cannot read
them: its evaluator would count such reports unreadable, and its ``verify`` and export would see
changed bodies. The tables do not change; the revision is there so that such a centre refuses this
database when it starts ("the database's schema is at revision 0017, which this version of
tillsyn-central does not know"), and a release with it is installed as one with a migration
(docs/operations.md, "Upgrades with replicas").

The downgrade puts back what an earlier centre reads: every tsk3 skeleton is stored as the tsk2
skeleton of the same compressed parts, its dictionary named by the SHA-256 of the one piece of the
node that begins with the prefix, checked to read back the same bytes (24 bytes more a report; the
pieces do not change). A body that cannot be read (its dictionary gone, or more than one piece
beginning with its prefix) is left as it is: it is unreadable to either version, and ``verify``
names it.
"""

from __future__ import annotations

from alembic import op

from central.db import report_bodies
from central.db.migrations.bodies import rewrite

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    rewrite(op.get_bind(), report_bodies.MAGIC3, report_bodies.Bodies.as_tsk2)
