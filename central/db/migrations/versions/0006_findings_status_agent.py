"""findings: the status index also holds agent_id

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 22:30:00.000000

The fleet page and the node list count each node's findings that are not passing through this
index; with agent_id in it they no longer read a table row per such finding (central/judging/node_states.py).
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_findings_status", table_name="findings")
    op.create_index("ix_findings_status", "findings", ["status", "agent_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_findings_status", table_name="findings")
    op.create_index("ix_findings_status", "findings", ["status"], unique=False)
