"""Migration 0008 on SQLite and PostgreSQL: finding changes recorded before it get the controls and
severity of their rule from the node's finding, another node's finding, or the shipped policy; a change
of a rule none of them knows stays without, and the export lists it under no control."""

from __future__ import annotations

from datetime import datetime, timezone

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import column, select, table, update

from central.db import migrate
from central.db.engine import read_tx
from central.db.schema import finding_changes, findings
from central.db.types import UTCDateTime
from central.export.build import build
from central.export.model import Request
from central.runtime.service import Centre
from tests.central.conftest import Node, evidence_record, new_token

_OLD_CHANGES = table(
    "finding_changes",
    column("agent_id"),
    column("rule_id"),
    column("from_status"),
    column("to_status"),
    column("at", UTCDateTime()),
)
"""The table as 0007 left it (no controls, no severity)."""


def test_changes_before_it_get_their_rules_classification(client: TestClient, centre: Centre) -> None:
    first, second = Node(client, hostname="a.example"), Node(client, hostname="b.example")
    for node in (first, second):
        node.enrol(new_token(centre, tenant="acme"))
        assert node.send(node.report(evidence_record("ports", {"sockets": []}))).status_code == 200
    with centre.engine.connect() as conn:
        command.downgrade(migrate._config(conn), "0007")
        conn.commit()
    at = datetime.now(timezone.utc)
    with centre.engine.begin() as conn:
        # as if a policy had classed the rule otherwise on the second node: its finding's word counts there
        conn.execute(
            update(findings)
            .where(findings.c.agent_id == second.agent_id, findings.c.rule_id == "ports-no-remote-service")
            .values(severity="low")
        )
        # the first node's finding for that rule is gone (retired there): the second node's finding answers
        conn.execute(
            findings.delete().where(
                findings.c.agent_id == first.agent_id, findings.c.rule_id == "ports-no-remote-service"
            )
        )
        # no finding anywhere: the shipped policy answers; a site's own retired rule: nobody does
        conn.execute(findings.delete().where(findings.c.rule_id == "backup-recent"))
        for rule_id in ("backup-recent", "site-own-rule"):
            conn.execute(
                _OLD_CHANGES.insert().values(
                    agent_id=first.agent_id, rule_id=rule_id, from_status=None, to_status="failing", at=at
                )
            )
    migrate.upgrade(centre.engine)

    with centre.engine.connect() as conn:
        rows = conn.execute(
            select(
                finding_changes.c.agent_id,
                finding_changes.c.rule_id,
                finding_changes.c.controls,
                finding_changes.c.severity,
            )
        ).all()
    got = {(a == first.agent_id, rule): (controls, severity) for a, rule, controls, severity in rows}
    assert got[(True, "ports-no-plaintext-remote")] == (["M07"], "high")  # its own finding
    assert got[(True, "ports-no-remote-service")] == (["M11"], "low")  # the other node's finding
    assert got[(False, "ports-no-remote-service")] == (["M11"], "low")
    assert got[(True, "backup-recent")] == (["M04"], "high")  # the shipped policy
    assert got[(True, "site-own-rule")] == (None, None)
    assert all(controls for key, (controls, _) in got.items() if key[1] != "site-own-rule")

    with read_tx(centre.engine) as conn:
        data = build(conn, Request(datetime.now(timezone.utc), tenant="acme"))
    node = next(n for n in data["nodes"] if n["id"] == first.agent_id)
    own = next(r for r in node["rules"] if r["rule_id"] == "site-own-rule")
    assert (own["status"], own["controls"]) == ("failing", [])
