"""retention: ledger checkpoints and the indexes the age queries read

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 19:50:00.000000

The table and indexes are defined in central/retention/sweep.py on the shared metadata.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import central.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_checkpoints",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("chain_index", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("pruned_at", central.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_ledger_checkpoints_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_ledger_checkpoints")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index("ix_reports_received_at", ["received_at"], unique=False)
    with op.batch_alter_table("finding_changes", schema=None) as batch_op:
        batch_op.create_index("ix_finding_changes_at", ["at"], unique=False)
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_resolved_at", ["resolved_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_resolved_at")
    with op.batch_alter_table("finding_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_finding_changes_at")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_received_at")
    op.drop_table("ledger_checkpoints")
