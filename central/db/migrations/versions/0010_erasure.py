"""erasure on request (M08) and the duties' last runs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:30:00.000000

``erasures``: each request to erase a node's personal data (GDPR Art. 17), when it was made, when
it is due (three months later) and when it was carried out, by whom.  ``reports`` gains
``erased_sha256`` (the hash of the body after erasure; ``body_sha256`` keeps the original's, which
the chain commits to) and ``erasure_id``.  ``duty_runs``: when a background duty (retention) last
ran, so M08 can say it ran within its interval.  docs/audit-export.md ("Erasure").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import central.db.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("requested_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("due_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("erased_at", central.db.types.UTCDateTime(), nullable=True),
        sa.Column("erased_by", sa.String(length=128), nullable=True),
        sa.Column("reports", sa.Integer(), nullable=True),
        sa.Column("erased_values", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_erasures_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
        sa.UniqueConstraint("reference", name=op.f("uq_erasures_reference")),
    )
    op.create_table(
        "duty_runs",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_run_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_duty_runs")),
    )
    op.add_column("reports", sa.Column("erased_sha256", sa.String(length=64), nullable=True))
    op.add_column("reports", sa.Column("erasure_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("erasure_id")
        batch_op.drop_column("erased_sha256")
    op.drop_table("duty_runs")
    op.drop_table("erasures")
