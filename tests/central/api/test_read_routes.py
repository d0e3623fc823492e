"""The read API, /metrics and /healthz on SQLite and PostgreSQL: keys, filters, refusals."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Dict

from fastapi.testclient import TestClient

from central.auth import apikeys
from central.db.engine import write_tx
from central.runtime.service import Centre
from tests.central.conftest import Node, api_key, evidence_record, new_token
from tests.shipped import shipped_rule_count

TELNET = {"protocol": "tcp", "address": "0.0.0.0", "port": 23, "exposure": "all", "tags": ["plaintext_remote"]}


def test_a_key_is_required_and_the_refusal_says_what_to_do(client: TestClient, centre: Centre) -> None:
    with write_tx(centre.engine) as conn:
        key_id, secret = apikeys.create(conn, "ops", datetime.now(timezone.utc))
    assert client.get("/api/v1/nodes", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    with write_tx(centre.engine) as conn:
        assert apikeys.revoke(conn, key_id, datetime.now(timezone.utc))
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": f"Bearer {secret}"},
                    {"Authorization": "Bearer tsk_never_issued"}):  # fmt: skip
        for path in ("/api/v1/nodes", "/api/v1/findings", "/api/v1/policy", "/api/v1/controls"):
            refused = client.get(path, headers=headers)
            body = refused.json()
            assert (refused.status_code, body["error"]) == (401, "unauthenticated"), (headers, path)
            assert "apikey create" in body["hint"]
    assert client.get("/api/v1/nodes").json()["message"] == "send 'Authorization: Bearer <API key>'"
    assert client.get("/api/v1/nodes", headers={"Authorization": f"Bearer {secret}"}).json()["message"] == (
        "unknown or revoked API key"
    )


def test_nodes_findings_filters_and_detail(client: TestClient, centre: Centre) -> None:
    headers = api_key(centre)
    web = Node(client, hostname="web1.example.net")
    db = Node(client, hostname="DB1.Example.net")
    for n in (web, db):
        n.enrol(new_token(centre))
    web.send(web.report(evidence_record("ports", {"sockets": [TELNET]})))
    db.send(db.report(evidence_record("ports", {"sockets": []})))

    nodes = client.get("/api/v1/nodes", headers=headers).json()
    assert [(n["hostname"], n["state"]) for n in nodes] == [
        ("DB1.Example.net", "stale"),
        ("web1.example.net", "failing"),
    ]
    by_host = {n["hostname"]: n for n in nodes}
    assert by_host["web1.example.net"]["findings"] == {
        "passing": 2,
        "failing": 1,
        "unknown": 0,
        "stale": shipped_rule_count() - 3,
    }
    assert by_host["DB1.Example.net"]["findings"] == {
        "passing": 3,
        "failing": 0,
        "unknown": 0,
        "stale": shipped_rule_count() - 3,
    }
    assert by_host["web1.example.net"]["last_report_at"] is not None
    failing = client.get("/api/v1/nodes?state=failing", headers=headers).json()
    assert [n["id"] for n in failing] == [web.agent_id]
    # search is by part of the hostname, in any case, on both databases
    for term in ("db1", "DB1", "example.NET"):
        found = {n["hostname"] for n in client.get(f"/api/v1/nodes?search={term}", headers=headers).json()}
        assert "DB1.Example.net" in found, term
    assert client.get("/api/v1/nodes?search=web1&state=stale", headers=headers).json() == []
    assert client.get("/api/v1/nodes?search=%25", headers=headers).json() == []  # % is literal, not a wildcard

    fails = client.get("/api/v1/findings?status=failing", headers=headers).json()
    assert [(f["hostname"], f["rule_id"], f["observed"][0]["port"]) for f in fails] == [
        ("web1.example.net", "ports-no-plaintext-remote", 23)
    ]
    m11 = client.get("/api/v1/findings?control=M11&status=passing", headers=headers).json()
    assert sorted(f["hostname"] for f in m11) == ["DB1.Example.net", "web1.example.net"]
    assert {f["rule_id"] for f in m11} == {"ports-no-remote-service"}
    m01 = client.get("/api/v1/findings?control=M01", headers=headers).json()
    assert len(m01) == 14 and {f["status"] for f in m01} == {"stale"}
    one = client.get(f"/api/v1/findings?rule=backup-recent&node={db.agent_id}", headers=headers).json()
    assert [(f["agent_id"], f["status"]) for f in one] == [(db.agent_id, "stale")]
    # failing first across the fleet
    assert client.get("/api/v1/findings", headers=headers).json()[0]["status"] == "failing"

    detail = client.get(f"/api/v1/nodes/{web.agent_id}", headers=headers).json()
    assert (detail["hostname"], detail["state"], len(detail["findings_detail"])) == (
        "web1.example.net",
        "failing",
        shipped_rule_count(),
    )
    (evidence,) = detail["evidence"]
    assert (evidence["collector"], evidence["record"]["observed"]["sockets"][0]["port"]) == ("ports", 23)
    missing = client.get("/api/v1/nodes/no-such-node", headers=headers)
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found", "message": "no node 'no-such-node'"})

    controls = client.get("/api/v1/controls", headers=headers).json()
    assert [c["id"] for c in controls] == [f"M{i:02d}" for i in range(1, 14)]
    assert controls[3]["gdpr"] == ["32(1)(c)", "32(1)(d)"]


BAD_FILTERS = [
    ("/api/v1/nodes?state=broken", "state='broken' is not one of: passing, failing, unknown, stale, silent, revoked"),
    ("/api/v1/findings?status=silent", "status='silent' is not one of: passing, failing, unknown, stale"),
    ("/api/v1/findings?control=M14", "control='M14' is not a control id (M01 to M13)"),
    ("/api/v1/findings?rule=" + "x" * 65, "rule is longer than 64 characters"),
    ("/api/v1/nodes?search=" + "x" * 256, "search is longer than 255 characters"),
]


def test_bad_filter_values_are_422_with_the_allowed_values(client: TestClient, centre: Centre) -> None:
    headers = api_key(centre)
    for query, message in BAD_FILTERS:  # one database per test is the costly part: one test, many cases
        refused = client.get(query, headers=headers)
        assert (refused.status_code, refused.json()) == (422, {"error": "bad_filter", "message": message})


def test_metrics_and_healthz(client: TestClient, centre: Centre, node: Node) -> None:
    node.send(node.report(evidence_record("ports", {"sockets": [TELNET]})))
    forged = node.report(evidence_record("ports", {"sockets": []}))
    assert node.send(forged, key=Node(client).key).status_code == 401
    assert node.send(forged, agent_id="unknownagent1").status_code == 401
    metrics: Dict[str, float] = {}
    elsewhere = client.get("/metrics")  # TestClient's own address is not loopback, and no token is configured
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (401, "unauthenticated")
    for line in TestClient(client.app, client=("127.0.0.1", 50000)).get("/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            metrics[name] = float(value)
    assert metrics["tillsyn_reports_ingested_total"] == 1
    assert metrics['tillsyn_requests_rejected_total{endpoint="reports",reason="bad_signature"}'] == 1
    assert metrics['tillsyn_requests_rejected_total{endpoint="reports",reason="unknown_agent"}'] == 1
    assert metrics['tillsyn_nodes{state="failing"}'] == 1
    assert metrics['tillsyn_nodes{state="passing"}'] == 0
    assert metrics["tillsyn_ingest_seconds_count"] == 1
    assert metrics["tillsyn_reports_evaluated_total"] == 1
    assert metrics["tillsyn_evaluation_backlog"] == 0
    # read from the database at scrape time: the telnet finding under its control, the node's agent version
    assert metrics['tillsyn_findings{control="M07",status="failing"}'] == 1
    assert sum(v for k, v in metrics.items() if k.startswith("tillsyn_agents_by_version{")) == 1
    assert metrics['tillsyn_incidents_open{severity="high"}'] == 0  # no alerting configured, no incident
    assert metrics["tillsyn_pipeline_read_ok"] == 1
    assert metrics['tillsyn_health_problem{check="channel_failing"}'] == 0
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "reasons": [],
        "checks": [],
        "database": centre.engine.dialect.name,
        "policy_error": None,
        "evaluation_backlog": 0,
    }
