"""finding_changes: the controls and severity a rule had when its status changed

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:00:00.000000

The auditor's export rebuilds a rule's status at a past moment from finding_changes, but took
the rule's controls from today's findings, else today's policy: a rule that failed and later
left the policy was listed under no control, so a control shown failing in an export read
"passing" when the export was rebuilt (central/export/history.py). Each change now records the
controls and severity the finding had, and the export reads them from there.

Rows written before this migration are filled, in this order, from:
1. the node's own finding for the rule (its classification today: a policy edit that moved a
   rule to other controls without changing its status was not recorded, so none can be undone);
2. another node's finding for the same rule (controls cannot be overridden per node; severity can,
   so this is that node's);
3. the rules shipped in config/policy.yaml up to this release (``SHIPPED``, frozen here so the
   migration means the same whatever the policy file says later).
A row left NULL is a change of a rule known to none of these (a site's own rule retired before
the upgrade): its controls and severity were not recorded, and the export lists it under no
control (``controls``: []).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SHIPPED = {
    "power-ups-present": (["M01"], "high"),
    "power-ups-on-line": (["M01"], "high"),
    "power-battery-not-low": (["M01"], "critical"),
    "power-battery-replace": (["M01"], "medium"),
    "power-self-test-passed": (["M01"], "medium"),
    "power-self-test-recent": (["M01"], "medium"),
    "power-shutdown-client": (["M01"], "medium"),
    "disk-mounts-encrypted": (["M02"], "high"),
    "disk-swap-encrypted": (["M02"], "high"),
    "av-running": (["M03"], "high"),
    "av-signatures-fresh": (["M03"], "high"),
    "av-real-time": (["M03"], "medium"),
    "backup-recent": (["M04"], "high"),
    "backup-separate": (["M04"], "high"),
    "backup-encrypted": (["M04"], "high"),
    "backup-restore-tested": (["M04"], "medium"),
    "backup-restore-passed": (["M04"], "high"),
    "ports-no-plaintext-remote": (["M07"], "high"),
    "ports-no-exposed-database": (["M07"], "high"),
    "ports-no-remote-service": (["M11"], "medium"),
}
"""Every rule config/policy.yaml has shipped, with its controls and default severity."""


def _classified(name: str) -> sa.TableClause:
    """The columns of ``name`` this migration reads or writes (as the table stands here)."""
    columns = (("agent_id", sa.String), ("rule_id", sa.String), ("controls", sa.JSON), ("severity", sa.String))
    return sa.table(name, *(sa.column(column, kind) for column, kind in columns))


_changes, _findings = _classified("finding_changes"), _classified("findings")


def _from_findings(same_node: bool) -> None:
    """Fill the rows still without controls from a finding of the same rule (the node's own, or any)."""
    match = [_findings.c.rule_id == _changes.c.rule_id]
    if same_node:
        match.append(_findings.c.agent_id == _changes.c.agent_id)
    found = sa.select(_findings.c.agent_id).where(*match)
    values = {
        name: sa.select(_findings.c[name]).where(*match).order_by(_findings.c.agent_id).limit(1).scalar_subquery()
        for name in ("controls", "severity")
    }
    op.execute(sa.update(_changes).where(_changes.c.controls.is_(None), sa.exists(found)).values(**values))


def upgrade() -> None:
    with op.batch_alter_table("finding_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("controls", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("severity", sa.String(length=16), nullable=True))
    _from_findings(same_node=True)
    _from_findings(same_node=False)
    for rule_id, (controls, severity) in SHIPPED.items():
        op.execute(
            sa.update(_changes)
            .where(_changes.c.rule_id == rule_id, _changes.c.controls.is_(None))
            .values(controls=controls, severity=severity)
        )


def downgrade() -> None:
    with op.batch_alter_table("finding_changes", schema=None) as batch_op:
        batch_op.drop_column("severity")
        batch_op.drop_column("controls")
