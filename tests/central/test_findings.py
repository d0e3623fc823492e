"""Findings through the API on SQLite and PostgreSQL: stale until evidence arrives, failing with
the observed value, passing when fixed, and each transition recorded exactly once."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from central.db.schema import finding_changes, findings
from central.service import Centre
from evidence.model import Status
from tests.central.conftest import Node, api_key, evidence_record

RULE = "ports-no-plaintext-remote"
TELNET = {
    "protocol": "tcp",
    "address": "0.0.0.0",
    "port": 23,
    "exposure": "all",
    "tags": ["plaintext_remote"],
    "services": ["telnet"],
    "process": {"name": "inetd"},
}
SSH = dict(TELNET, port=22, tags=[], services=["ssh"], process={"name": "sshd"})


def changes(centre: Centre, agent_id: str, rule_id: str) -> List[Tuple[Any, Any, Any]]:
    with centre.engine.connect() as conn:
        rows = conn.execute(
            select(finding_changes.c.from_status, finding_changes.c.to_status, finding_changes.c.report_id)
            .where(finding_changes.c.agent_id == agent_id, finding_changes.c.rule_id == rule_id)
            .order_by(finding_changes.c.id)
        ).all()
    return [tuple(r) for r in rows]


def finding(client: TestClient, headers: Dict[str, str], node: Node, rule: str) -> Dict[str, Any]:
    found = client.get(f"/api/v1/findings?node={node.agent_id}&rule={rule}", headers=headers).json()
    assert len(found) == 1, found
    result: Dict[str, Any] = found[0]
    return result


def test_stale_then_failing_then_passing_each_change_once(client: TestClient, centre: Centre, node: Node) -> None:
    headers = api_key(centre)
    fresh = client.get(f"/api/v1/findings?node={node.agent_id}", headers=headers).json()
    assert len(fresh) == len(centre.policy.policy.rules) == 20
    assert {f["status"] for f in fresh} == {"stale"}  # never passing before evidence arrives
    assert client.get(f"/api/v1/nodes/{node.agent_id}", headers=headers).json()["state"] == "stale"

    bad = node.report(evidence_record("ports", {"sockets": [SSH, TELNET]}))
    assert node.send(bad).status_code == 200
    failing = finding(client, headers, node, RULE)
    assert (failing["status"], failing["report_id"], failing["rule_version"]) == ("failing", bad["report_id"], 1)
    assert failing["observed"] == [
        {"protocol": "tcp", "address": "0.0.0.0", "port": 23, "services": ["telnet"], "process.name": "inetd"}
    ]
    assert failing["controls"] == ["M07"] and failing["severity"] == "high"
    assert "1 sockets where none is allowed" in failing["message"]
    since = failing["since"]

    # the same deviation again: still failing, since unchanged, no new change row; the finding
    # keeps the report that established it (freshness lives in latest_evidence)
    again = node.report(evidence_record("ports", {"sockets": [TELNET]}))
    node.send(again)
    still = finding(client, headers, node, RULE)
    assert (still["status"], still["since"], still["report_id"]) == ("failing", since, bad["report_id"])
    # a duplicate delivery of the first report changes nothing
    assert node.send(bad).json()["duplicates"] == [bad["report_id"]]

    fixed = node.report(evidence_record("ports", {"sockets": [SSH]}))
    node.send(fixed)
    passing = finding(client, headers, node, RULE)
    assert (passing["status"], passing["observed"], passing["report_id"]) == ("passing", [], fixed["report_id"])
    assert passing["since"] > since
    assert changes(centre, node.agent_id, RULE) == [
        (None, "stale", None),
        ("stale", "failing", bad["report_id"]),
        ("failing", "passing", fixed["report_id"]),
    ]
    # rules of collectors that did not report stay stale
    power = finding(client, headers, node, "power-ups-present")
    assert power["status"] == "stale" and power["report_id"] is None


def test_refused_report_changes_no_finding(client: TestClient, centre: Centre, node: Node) -> None:
    def snapshot() -> Tuple[Any, ...]:
        with centre.engine.connect() as conn:
            rows = conn.execute(select(findings.c.rule_id, findings.c.status).order_by(findings.c.rule_id)).all()
            count = conn.execute(select(func.count()).select_from(finding_changes)).scalar()
        return tuple(rows), count

    before = snapshot()
    forged = node.report(evidence_record("ports", {"sockets": [TELNET]}))
    forged["signature"] = node.report(evidence_record("ports", {"sockets": []}))["signature"]
    refused = node.send(forged)
    assert refused.status_code == 401 and refused.json()["error"] == "bad_signature"
    assert snapshot() == before


def test_collector_error_and_partial_evidence_are_unknown(client: TestClient, centre: Centre, node: Node) -> None:
    headers = api_key(centre)
    broken = evidence_record("power", {}, status=Status.ERROR)
    broken = broken.__class__(**{**broken.__dict__, "error": "collector timed out after 10 s"})
    node.send(node.report(broken, evidence_record("backup", {"configured": 1, "readable": 0}, Status.PARTIAL)))
    ups = finding(client, headers, node, "power-ups-present")
    assert (ups["status"], ups["message"]) == ("unknown", "collector error: collector timed out after 10 s")
    assert finding(client, headers, node, "backup-recent")["status"] == "unknown"
    unknown = client.get(f"/api/v1/findings?node={node.agent_id}&status=unknown", headers=headers).json()
    assert {f["rule_id"] for f in unknown} >= {"power-ups-present", "power-shutdown-client", "backup-recent"}
    assert client.get(f"/api/v1/nodes/{node.agent_id}", headers=headers).json()["state"] == "unknown"
