"""An export made while the centre still judges reports it received, on SQLite and PostgreSQL: "now"
ends just before the oldest unjudged report (so the export verifies once it is judged), a later
time given by hand is refused, and verifying waits until the centre has judged what the export
covers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from central.db.engine import read_tx, write_tx
from central.db.schema import reports
from central.export.build import build
from central.export.model import Request, iso
from central.runtime.service import Centre
from tests.central.conftest import EvaluatorNotYet, Node, evidence_record, new_token
from tests.central.export.helpers import RULE, TELNET, cli


def _status(data: Dict[str, Any]) -> str:
    status: str = next(r for r in data["nodes"][0]["rules"] if r["rule_id"] == RULE)["status"]
    return status


@pytest.fixture
def waiting(client: TestClient, centre: Centre, monkeypatch: pytest.MonkeyPatch) -> Dict[str, Any]:
    """acme's node failed (judged); its next report, telnet closed, is stored but not judged yet."""
    node = Node(client)
    node.enrol(new_token(centre, tenant="acme"))
    assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
    monkeypatch.setattr(centre, "evaluator", EvaluatorNotYet())
    assert node.send(node.report(evidence_record("ports", {"sockets": []}))).status_code == 200
    with centre.engine.connect() as conn:
        received = conn.execute(
            select(reports.c.received_at).where(reports.c.agent_id == node.agent_id, reports.c.chain_index == 2)
        ).scalar_one()
    return {"node": node, "received": received}


def test_an_export_made_now_ends_before_what_is_not_judged_and_verifies_later(
    centre: Centre, waiting: Dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "now.json"
    made = cli(centre, tmp_path, "export", "report", "--tenant", "acme", "-o", str(path))
    assert made.returncode == 0, made.stderr
    with read_tx(centre.engine) as conn:  # the same export built directly (the HTTP API's "now")
        direct = build(conn, Request(datetime.now(timezone.utc), tenant="acme"))

    monkeypatch.setattr(centre, "evaluator", None)
    assert centre.evaluate().reports == 1
    checked = cli(centre, tmp_path, "export", "verify", str(path))
    assert (checked.returncode, checked.stdout) == (0, f"{path}: 1 node(s) checked against the ledger: matches\n")
    data = json.loads(path.read_text())
    assert _status(data) == "failing" and data["nodes"][0]["ledger"]["length"] == 1
    assert data["scope"]["at"] == direct["scope"]["at"] == iso(waiting["received"] - timedelta(microseconds=1))
    assert "the centre is still judging 1 report(s), the oldest received at" in made.stderr


def test_a_time_given_after_it_is_refused(centre: Centre, waiting: Dict[str, Any], tmp_path: Path) -> None:
    later = iso(datetime.now(timezone.utc) + timedelta(minutes=1)) or ""
    for when in (["--at", later], ["--from", iso(waiting["received"] - timedelta(days=1)) or "", "--to", later]):
        refused = cli(centre, tmp_path, "export", "report", "--tenant", "acme", *when, "-o", str(tmp_path / "x.json"))
        assert refused.returncode == 2 and not (tmp_path / "x.json").exists()
        assert "the centre is still judging 1 report(s)" in refused.stderr
        assert f"give a time before {iso(waiting['received'])}" in refused.stderr
    # Another tenant's backlog holds nobody else back.
    globex = cli(centre, tmp_path, "export", "report", "--tenant", "globex", "--at", later)
    assert globex.returncode == 0, globex.stderr


def test_verifying_waits_for_reports_received_by_the_exports_end(
    centre: Centre, waiting: Dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(centre, "evaluator", None)
    centre.evaluate()
    path = tmp_path / "audit.json"
    assert cli(centre, tmp_path, "export", "report", "--tenant", "acme", "-o", str(path)).returncode == 0
    end = datetime.fromisoformat(json.loads(path.read_text())["scope"]["at"].replace("Z", "+00:00"))
    node: Node = waiting["node"]
    monkeypatch.setattr(centre, "evaluator", EvaluatorNotYet())
    assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
    with write_tx(centre.engine) as conn:  # received before the export's end (a transaction still in flight then)
        conn.execute(
            update(reports)
            .where(reports.c.agent_id == node.agent_id, reports.c.chain_index == 3)
            .values(received_at=end - timedelta(seconds=1))
        )
    refused = cli(centre, tmp_path, "export", "verify", str(path))
    assert refused.returncode == 2, refused.stdout
    assert "cannot verify yet: the centre is still judging 1 report(s)" in refused.stderr


def test_the_api_refuses_a_moment_not_judged_yet_and_records_nothing(
    client: TestClient, centre: Centre, waiting: Dict[str, Any]
) -> None:
    from central.db.schema import audit_log
    from tests.central.conftest import api_key

    key = api_key(centre)
    later = iso(waiting["received"] + timedelta(seconds=1))
    for query in (f"at={later}", f"from={iso(waiting['received'])}"):  # a period starting then ends "now"
        refused = client.get(f"/api/v1/export?tenant=acme&{query.replace('+', '%2B')}", headers=key)
        assert refused.status_code == 409, (query, refused.text)
        assert refused.json()["error"] == "not_judged_yet"
        assert "the centre is still judging 1 report(s)" in refused.json()["message"]
    made = client.get("/api/v1/export?tenant=acme", headers=key)  # "now": ends before the unjudged report
    assert made.status_code == 200
    with read_tx(centre.engine) as conn:
        assert len(conn.execute(select(audit_log.c.id).where(audit_log.c.action == "export")).all()) == 1
