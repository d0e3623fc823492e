"""evaluation queue: reports stored but not yet evaluated against the policy

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 22:20:00.000000

Ingest stores and chains a report and queues it here in the same transaction; the
evaluator reads the queue in batches, updates findings and deletes the entries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_evaluation",
        sa.Column("report_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_pk"],
            ["reports.id"],
            name=op.f("fk_pending_evaluation_report_pk_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_pk", name=op.f("pk_pending_evaluation")),
    )
    op.create_index("ix_pending_evaluation_agent_id", "pending_evaluation", ["agent_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pending_evaluation_agent_id", table_name="pending_evaluation")
    op.drop_table("pending_evaluation")
