"""evidence stored once per node: report skeletons and their pieces

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 04:00:00.000000

``evidence_blobs``: each node's pieces of evidence (an evidence record's ``observed`` value), once,
compressed, keyed by the SHA-256 of their bytes.  New reports' ``body`` is a skeleton referring to
them (central/db/report_bodies.py); bodies stored before keep their raw bytes and are read as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import central.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_blobs",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("last_used", central.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_evidence_blobs_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", "digest", name=op.f("pk_evidence_blobs")),
    )


def downgrade() -> None:
    op.drop_table("evidence_blobs")
