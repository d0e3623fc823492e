"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 18:38:56.291593
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import central.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("machine_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=True),
        sa.Column("group_name", sa.String(length=128), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("agent_version", sa.String(length=64), nullable=True),
        sa.Column("token_id", sa.String(length=32), nullable=True),
        sa.Column("enrolled_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", central.db.types.UTCDateTime(), nullable=True),
        sa.Column("conflict", sa.Text(), nullable=True),
        sa.Column("last_report_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_report_at", central.db.types.UTCDateTime(), nullable=True),
        sa.Column("last_heartbeat_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_heartbeat_at", central.db.types.UTCDateTime(), nullable=True),
        sa.Column("health", sa.JSON(), nullable=True),
        sa.Column("silent", sa.Boolean(), nullable=False),
        sa.Column("silent_since", central.db.types.UTCDateTime(), nullable=True),
        sa.Column("ledger_length", sa.BigInteger(), nullable=False),
        sa.Column("ledger_head", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_machine_id"), ["machine_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agents_public_key"), ["public_key"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", central.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "enrolment_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=True),
        sa.Column("group_name", sa.String(length=128), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("revoked_at", central.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_enrolment_tokens_token_hash")),
    )
    op.create_table(
        "enrolment_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("detected_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("machine_id", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("existing_agent_id", sa.String(length=32), nullable=False),
        sa.Column("new_agent_id", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["existing_agent_id"], ["agents.id"], name=op.f("fk_enrolment_conflicts_existing_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["new_agent_id"], ["agents.id"], name=op.f("fk_enrolment_conflicts_new_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment_conflicts")),
    )
    op.create_table(
        "finding_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("observed", sa.JSON(), nullable=True),
        sa.Column("report_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_finding_changes_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finding_changes")),
    )
    with op.batch_alter_table("finding_changes", schema=None) as batch_op:
        batch_op.create_index("ix_finding_changes_agent_rule", ["agent_id", "rule_id"], unique=False)

    op.create_table(
        "findings",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("controls", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("observed", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("since", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("evaluated_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("evidence_at", central.db.types.UTCDateTime(), nullable=True),
        sa.Column("report_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_findings_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", "rule_id", name=op.f("pk_findings")),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index("ix_findings_status", ["status"], unique=False)

    op.create_table(
        "latest_evidence",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("collector", sa.String(length=64), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("collected_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_latest_evidence_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", "collector", name=op.f("pk_latest_evidence")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("collected_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("received_at", central.db.types.UTCDateTime(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("chain_index", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_reports_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("agent_id", "chain_index", name="uq_reports_agent_chain"),
        sa.UniqueConstraint("agent_id", "report_id", name="uq_reports_agent_report"),
        sa.UniqueConstraint("agent_id", "seq", name="uq_reports_agent_seq"),
    )


def downgrade() -> None:
    op.drop_table("reports")
    op.drop_table("latest_evidence")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index("ix_findings_status")

    op.drop_table("findings")
    with op.batch_alter_table("finding_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_finding_changes_agent_rule")

    op.drop_table("finding_changes")
    op.drop_table("enrolment_conflicts")
    op.drop_table("enrolment_tokens")
    op.drop_table("api_keys")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_public_key"))
        batch_op.drop_index(batch_op.f("ix_agents_machine_id"))

    op.drop_table("agents")
