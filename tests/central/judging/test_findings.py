"""Findings through the API on SQLite and PostgreSQL: stale until evidence arrives, failing with
the observed value, passing when fixed, and each transition recorded exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Tuple

from fastapi.testclient import TestClient
from sqlalchemy import Connection, delete, func, select

from central.db.engine import write_tx
from central.db.schema import finding_changes, findings
from central.judging.findings import COMPARED, record
from central.runtime.service import Centre
from evidence.model import Status
from evidence.rules import Result, Verdict
from tests.central.conftest import Node, api_key, evidence_record
from tests.central.judging.helpers import RULE, SSH, TELNET, changes
from tests.shipped import shipped_rule_count


def finding(client: TestClient, headers: Dict[str, str], node: Node, rule: str) -> Dict[str, Any]:
    found = client.get(f"/api/v1/findings?node={node.agent_id}&rule={rule}", headers=headers).json()
    assert len(found) == 1, found
    result: Dict[str, Any] = found[0]
    return result


def test_stale_then_failing_then_passing_each_change_once(client: TestClient, centre: Centre, node: Node) -> None:
    headers = api_key(centre)
    fresh = client.get(f"/api/v1/findings?node={node.agent_id}", headers=headers).json()
    assert len(fresh) == len(centre.policy.policy.rules) == shipped_rule_count()
    assert {f["status"] for f in fresh} == {"stale"}  # never passing before evidence arrives
    assert client.get(f"/api/v1/nodes/{node.agent_id}", headers=headers).json()["state"] == "stale"

    bad = node.report(evidence_record("ports", {"sockets": [SSH, TELNET]}))
    assert node.send(bad).status_code == 200
    failing = finding(client, headers, node, RULE)
    assert (failing["status"], failing["report_id"], failing["rule_version"]) == ("failing", bad["report_id"], 1)
    assert failing["observed"] == [
        {
            "protocol": "tcp",
            "address": "0.0.0.0",
            "port": 23,
            "services": ["telnet"],
            "process.name": "inetd",
            "process.pid": None,
        }
    ]
    assert failing["controls"] == ["M07"] and failing["severity"] == "high"
    assert failing["message"] == "inetd listens on 0.0.0.0:23/tcp (telnet, plaintext)"
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
    assert (ups["status"], ups["message"]) == (
        "unknown",
        "cannot tell: power collector error: collector timed out after 10 s",
    )
    assert finding(client, headers, node, "backup-recent")["status"] == "unknown"
    unknown = client.get(f"/api/v1/findings?node={node.agent_id}&status=unknown", headers=headers).json()
    assert {f["rule_id"] for f in unknown} >= {"power-ups-present", "power-shutdown-client", "backup-recent"}
    assert client.get(f"/api/v1/nodes/{node.agent_id}", headers=headers).json()["state"] == "unknown"


def test_record_writes_only_changes_and_never_over_another_process(centre: Centre, node: Node) -> None:
    """record(): a new finding and its change; a verdict showing nothing new not written at all; a new
    value with the same status updated in place (its since kept, no change recorded); a status read
    before another process changed it writes nothing."""
    rule = next(r for r in centre.policy.policy.rules if r.id == RULE)
    start = datetime.now(timezone.utc).replace(microsecond=0)
    at = [start + timedelta(minutes=i) for i in range(6)]
    failing = Result(rule, Verdict.FAILING, [23], "telnet listens", at[0])

    def stored(conn: Connection) -> Dict[str, Any]:
        row = conn.execute(select(findings).where(findings.c.agent_id == node.agent_id, findings.c.rule_id == RULE))
        return dict(row.mappings().one())

    with write_tx(centre.engine) as conn:
        conn.execute(delete(findings).where(findings.c.agent_id == node.agent_id, findings.c.rule_id == RULE))
        assert record(conn, node.agent_id, failing, at[1], "r1") is True
        assert record(conn, node.agent_id, failing, at[2], "r2") is False
        first = stored(conn)
        assert (first["report_id"], first["evaluated_at"], first["since"]) == ("r1", at[1], at[1])  # not written
        worse = Result(rule, Verdict.FAILING, [23, 513], "telnet and rlogin listen", at[0])
        assert record(conn, node.agent_id, worse, at[3], "r3") is False  # same status: updated, no change
        now = stored(conn)
        assert (now["status"], now["observed"], now["message"], now["report_id"]) == (
            "failing",
            [23, 513],
            "telnet and rlogin listen",
            "r3",
        )
        assert (now["evaluated_at"], now["since"]) == (at[3], at[1])  # failing since the first verdict
        read_before = conn.execute(
            select(*COMPARED).where(findings.c.agent_id == node.agent_id, findings.c.rule_id == RULE)
        ).one()
        passing = Result(rule, Verdict.PASSING, [], "no telnet", at[0])
        assert record(conn, node.agent_id, passing, at[4], "r4", read_before) is True
        # another process judged with what it read before that change: its write is refused by the guard
        unknown = Result(rule, Verdict.UNKNOWN, None, "?", at[0])
        assert record(conn, node.agent_id, unknown, at[5], "r5", read_before) is False
        last = stored(conn)
    assert (last["status"], last["since"], last["report_id"]) == ("passing", at[4], "r4")
    assert changes(centre, node.agent_id, RULE)[-2:] == [(None, "failing", "r1"), ("failing", "passing", "r4")]
