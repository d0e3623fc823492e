"""The auditor's export over HTTP: only granted tenants, every format, recorded in the audit trail."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi.testclient import TestClient
from sqlalchemy import select

from central.auth import apikeys, users
from central.db.engine import read_tx, write_tx
from central.db.schema import audit_log
from central.runtime.service import Centre
from tests.central.conftest import Node, api_key, new_token


def test_export_within_granted_tenants(client: TestClient, centre: Centre) -> None:
    acme, globex = Node(client, hostname="web.acme"), Node(client, hostname="db.globex")
    acme.enrol(new_token(centre, tenant="acme"))
    globex.enrol(new_token(centre, tenant="globex"))
    for node in (acme, globex):
        assert node.send(node.report()).status_code == 200
    with write_tx(centre.engine) as conn:
        now = datetime.now(timezone.utc)
        users.create(conn, now, "test", "vera", "correct horse battery", "viewer", ["acme"])
        _, secret = apikeys.create(conn, "vera-key", now, users.user_id_of(conn, "vera"))
    vera = {"Authorization": f"Bearer {secret}"}

    mine = client.get("/api/v1/export?tenant=acme&format=json", headers=vera)
    assert mine.status_code == 200, mine.text
    assert "web.acme" in mine.text and "db.globex" not in mine.text and globex.agent_id not in mine.text
    assert mine.headers["content-disposition"].startswith('attachment; filename="tillsyn-export-acme-')
    assert client.get("/api/v1/export?tenant=globex", headers=vera).status_code == 404
    assert client.get("/api/v1/export", headers=vera).status_code == 403
    csv = client.get("/api/v1/export?tenant=acme&format=csv", headers=vera)
    assert csv.headers["content-type"].startswith("text/csv") and "web.acme" in csv.text
    html = client.get("/api/v1/export?tenant=acme&format=html", headers=vera)
    assert (
        html.headers["content-type"].startswith("text/html")
        and "default-src 'none'" in html.headers["content-security-policy"]
    )
    everything = client.get("/api/v1/export", headers=api_key(centre))
    assert "web.acme" in everything.text and "db.globex" in everything.text
    bad = client.get("/api/v1/export?tenant=acme&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", headers=vera)
    assert bad.status_code == 422
    with read_tx(centre.engine) as conn:
        actors = [r.actor for r in conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "export"))]
    assert actors.count("user:vera (apikey:vera-key)") == 3


def test_a_malformed_export_request_is_refused_and_leaves_no_audit_entry(client: TestClient, centre: Centre) -> None:
    """Refused before anything is recorded: an audit entry must not claim an export nobody got."""
    node = Node(client, hostname="web.acme")
    node.enrol(new_token(centre, tenant="acme"))
    assert node.send(node.report()).status_code == 200
    key = api_key(centre)
    for query, said in (
        ("tenant=%E2%82%AC", "tenant '€': use 1-128 of A-Z a-z 0-9 _ . : -"),
        ('tenant=a"b', "tenant 'a\"b': use 1-128 of A-Z a-z 0-9 _ . : -"),
        ("at=9999-12-31T23:59:59-05:00", "at: '9999-12-31T23:59:59-05:00' is out of range (years 1971 to 8999)"),
        ("at=0001-01-01T00:00:00%2B05:00", "at: '0001-01-01T00:00:00+05:00' is out of range (years 1971 to 8999)"),
        ("from=2026-01-01T00:00:00", "from: '2026-01-01T00:00:00' has no zone; add Z or +01:00"),
        ("at=yesterday", "at: 'yesterday' is not a time such as 2026-11-27T22:00:00Z"),
    ):
        answer = client.get(f"/api/v1/export?{query}", headers=key)
        assert answer.status_code == 422, (query, answer.status_code, answer.text)
        assert answer.json() == {"error": "malformed", "message": said}
    with read_tx(centre.engine) as conn:
        assert conn.execute(select(audit_log.c.id).where(audit_log.c.action == "export")).all() == []
    made = client.get("/api/v1/export?tenant=acme&at=2026-11-27T22:00:00%2B01:00", headers=key)
    assert made.status_code == 200 and made.headers["content-disposition"].startswith(
        'attachment; filename="tillsyn-export-acme-20261127T210000Z'
    )
    with read_tx(centre.engine) as conn:
        assert len(conn.execute(select(audit_log.c.id).where(audit_log.c.action == "export")).all()) == 1
