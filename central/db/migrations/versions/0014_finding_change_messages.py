"""finding_changes.message: the sentence each change said

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 12:45:00.000000

A change to failing or unknown keeps the finding's sentence of that moment (``telnetd (pid 4121)
listens on 0.0.0.0:23/tcp (telnet, plaintext)``), so the auditor's HTML and PDF export say in
words what each past deviation was, beside its observed value. Rows from before this migration
have none: the export shows their observed value alone, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("finding_changes") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("finding_changes") as batch:
        batch.drop_column("message")
