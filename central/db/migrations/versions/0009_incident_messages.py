"""incidents.message and outbox.message: the sentence people are told

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:00:00.000000

An incident's title is its rule's title; its message is the finding's sentence with the observed
value when it opened (``UPS acc@ups1 is on battery (OB DISCHRG), 29 min runtime left``). Each
notification keeps the sentence it carries (a resolve says what changed, an update that the
deviation is no longer seen), so a notification sent again after an outage says what it said then.
Rows from before this migration have none: the centre falls back to the title, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("message")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("message")
