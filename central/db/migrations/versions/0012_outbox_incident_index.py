"""outbox: an index on incident_id

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 05:10:00.000000

Every duty round asks the outbox when each open, notified incident was last sent to each channel
(reminders), and the incident pages and resolve notices ask it which channels heard an incident.
Without this index each such question read the whole outbox, which keeps every notification sent
until retention; with a large fleet that was most of a round's time. Creating it is safe while
replicas run (docs/operations.md).
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_incident", "outbox", ["incident_id", "channel"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_incident", table_name="outbox")
