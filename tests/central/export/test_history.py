"""An export rebuilt later says what it said when a rule has since left the policy: each finding change
records the controls (and severity) the rule had, and the export reads them from there, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Dict

from fastapi.testclient import TestClient
from sqlalchemy import select

from central.db.engine import read_tx, write_tx
from central.db.schema import agents, finding_changes
from central.export import check_export
from central.export.build import build
from central.export.model import Request
from central.judging.findings import reevaluate
from central.runtime.service import Centre
from evidence.policy import Policy
from tests.central.conftest import Node, evidence_record, new_token
from tests.central.export.helpers import RULE, TELNET


def _m07(data: Dict[str, Any]) -> Any:
    return next(c for c in data["controls"] if c["id"] == "M07")


def _export(centre: Centre, req: Request) -> Dict[str, Any]:
    with read_tx(centre.engine) as conn:
        return json.loads(json.dumps(build(conn, req, centre.policy.policy)))


def test_a_rule_that_left_the_policy_still_shows_failing_where_it_failed(client: TestClient, centre: Centre) -> None:
    node = Node(client)
    node.enrol(new_token(centre, tenant="acme"))
    assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
    failing_at = datetime.now(timezone.utc)
    made = _export(centre, Request(failing_at, tenant="acme"))
    assert [(n["agent_id"], n["status"]) for n in _m07(made)["nodes"]] == [(node.agent_id, "failing")]

    # An ordinary policy edit, after the export was made: the rule is gone.
    without = Policy(tuple(r for r in centre.policy.policy.rules if r.id != RULE))
    with write_tx(centre.engine) as conn:
        agent = conn.execute(select(agents).where(agents.c.id == node.agent_id)).mappings().one()
        assert reevaluate(conn, without, agent, datetime.now(timezone.utc)) == 1

    with read_tx(centre.engine) as conn:
        assert [str(p) for p in check_export.against_store(conn, made)] == []
    assert _export(centre, Request(failing_at, tenant="acme"))["controls"] == made["controls"]
    # Over a period that saw it retired: failing at the start, then no longer in force, still under M07.
    later = _export(centre, Request(datetime.now(timezone.utc), failing_at, tenant="acme"))
    (entry,) = [r for r in later["nodes"][0]["rules"] if r["rule_id"] == RULE]
    assert (entry["status_at_start"], entry["status"], entry["controls"]) == ("failing", "not_in_force", ["M07"])
    with centre.engine.connect() as conn:
        recorded = conn.execute(
            select(finding_changes.c.to_status, finding_changes.c.controls, finding_changes.c.severity)
            .where(finding_changes.c.rule_id == RULE)
            .order_by(finding_changes.c.id)
        ).all()
    assert [tuple(r) for r in recorded] == [(s, ["M07"], "high") for s in ("stale", "failing", "retired")]
