"""incidents: next_check_at, when a duty round must look at an open incident again

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 13:00:00.000000

Every duty round read every open incident to learn whether a reminder or re-send had fallen due;
with a large fleet (17,000 open incidents at 1,000 nodes in the fleet bench) that reading was most
of the round, and on SQLite it held the write lock. A round now reads the incidents due for a look
(this column null or passed) and those whose finding, node or window changed; it writes the next
time when it has looked. Existing open incidents start null: the first round looks at each once.
Adding a nullable column and an index is safe while replicas run (docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import central.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("next_check_at", central.db.types.UTCDateTime(), nullable=True))
    op.create_index("ix_incidents_due", "incidents", ["status", "next_check_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incidents_due", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("next_check_at")
