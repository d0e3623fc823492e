"""PostgreSQL: autovacuum does not truncate the tables ingest writes all the time

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 02:40:00.000000

Heartbeats update every node's row a minute, and the evaluation queue is filled and emptied all
day, so autovacuum visits these tables often; when it finds empty pages at a table's end it gives
them back to the operating system under an ACCESS EXCLUSIVE lock, which waits for and then blocks
every read and write of the table.  Under load (bench/ingest_load.py) that held the agents'
requests up 200-800 ms several times a minute; without truncation the stalls were gone, heartbeats
went from about 860/s to 1,170/s and reports from about 190/s to 250/s.  The pages stay with the
table and are reused by the next rows; the same for each table's TOAST table, where report bodies
live.  The setting needs PostgreSQL 12 or newer.  SQLite has no such setting and needs none.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("agents", "pending_evaluation", "reports", "findings", "latest_evidence")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (vacuum_truncate = false, toast.vacuum_truncate = false)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (vacuum_truncate, toast.vacuum_truncate)")
