"""The centre's basic path on both databases: enrol, report, finding, verify."""

from __future__ import annotations

from fastapi.testclient import TestClient

from central.ingest.ledger_check import verify_store
from central.runtime.service import Centre
from tests.central.conftest import Node, api_key, evidence_record


def test_report_is_stored_once_and_evaluated(client: TestClient, centre: Centre, node: Node) -> None:
    plaintext = {
        "sockets": [
            {
                "protocol": "tcp",
                "address": "0.0.0.0",
                "port": 23,
                "exposure": "all",
                "tags": ["plaintext_remote"],
                "services": ["telnet"],
                "process": {"name": "inetd"},
            }
        ]
    }
    envelope = node.report(evidence_record("ports", plaintext))
    first = node.send(envelope)
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == [envelope["report_id"]]
    again = node.send(envelope)
    assert again.status_code == 200 and again.json()["duplicates"] == [envelope["report_id"]]
    findings = client.get(
        f"/api/v1/findings?node={node.agent_id}&rule=ports-no-plaintext-remote", headers=api_key(centre)
    ).json()
    assert [(f["status"], f["observed"][0]["port"]) for f in findings] == [("failing", 23)]
    checked, problems = verify_store(centre.engine)
    assert (checked, problems) == (1, [])
