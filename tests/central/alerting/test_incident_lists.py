"""Incident lists filter by tenant and status in the query, before the limit: another tenant's
incidents never crowd out one's own (M10), and every incident stays reachable by id and by page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Tuple

from fastapi.testclient import TestClient

from central.db.engine import write_tx
from central.db.schema import incidents
from central.runtime.service import Centre
from tests.central.conftest import Node, new_token, snapshot
from tests.central.people import log_in, make_user, post

NOW = datetime.now(timezone.utc)
CROWD = 2005  # newer incidents of another tenant: more than the old limit of 1,000 and the page shows


def _incident(agent_id: str, n: int, status: str = "open") -> Dict[str, Any]:
    return {
        "agent_id": agent_id,
        "rule_id": f"rule-{n}",
        "kind": "finding",
        "status": status,
        "severity": "high",
        "title": f"rule {n} failing",
        "controls": ["M07"],
        "observed": None,
        "dedup_key": f"{agent_id}:rule-{n}",
        "opened_at": NOW - timedelta(hours=1),
        "resolved_at": NOW if status == "resolved" else None,
    }


def _crowded(client: TestClient, centre: Centre) -> Tuple[int, int]:
    """One open and one resolved acme incident, then CROWD newer globex ones: the acme ids."""
    acme, globex = Node(client, hostname="web.acme"), Node(client, hostname="db.globex")
    acme.enrol(new_token(centre, tenant="acme"))
    globex.enrol(new_token(centre, tenant="globex"))
    with write_tx(centre.engine) as conn:
        ids = [
            conn.execute(
                incidents.insert().returning(incidents.c.id).values(**_incident(acme.agent_id, n, s))
            ).scalar_one()
            for n, s in ((0, "open"), (1, "resolved"))
        ]
        conn.execute(incidents.insert(), [_incident(globex.agent_id, n) for n in range(2, 2 + CROWD)])
    return ids[0], ids[1]


def _ids(answer: Any) -> List[int]:
    assert answer.status_code == 200, answer.text
    return [i["id"] for i in answer.json()]


def test_one_tenants_incidents_are_listed_however_many_another_has(client: TestClient, centre: Centre) -> None:
    open_id, resolved_id = _crowded(client, centre)
    make_user(centre, "otto", "operator", "acme")
    make_user(centre, "root", "admin", "*")
    otto, otto_csrf = log_in(client, "otto")
    root, _ = log_in(client, "root")

    assert _ids(otto.get("/api/v1/incidents")) == [resolved_id, open_id]
    assert _ids(otto.get("/api/v1/incidents?status=open")) == [open_id]
    for who in (otto, root):
        shown = who.get(f"/api/v1/incidents/{open_id}")
        assert shown.status_code == 200 and shown.json()["rule_id"] == "rule-0"
        assert who.get(f"/incidents/{open_id}").status_code == 200
    assert otto.get(f"/api/v1/incidents/{open_id + 2}").status_code == 404  # globex's: as absent as none

    page = otto.get("/incidents").text
    assert "<h2>Open (1)</h2>" in page and "<h2>Past (1)</h2>" in page
    assert f'href="/incidents/{open_id}"' in page and f'href="/incidents/{resolved_id}"' in page
    assert "db.globex" not in page
    everyone = root.get("/incidents").text
    assert f"<h2>Open ({CROWD + 1})</h2>" in everyone
    assert "The oldest 6 open incidents are not shown here" in everyone  # 2,000 are, and the rest is said
    assert len(set(re.findall(r'href="/incidents/(\d+)"', everyone))) == 2000 + 1  # and the one past

    acked = post(otto, otto_csrf, f"/incidents/{open_id}/ack", note="on it")
    assert acked.status_code == 303 and acked.headers["location"] == f"/incidents/{open_id}"
    assert otto.get(f"/api/v1/incidents/{open_id}").json()["acknowledged_by"] == "user:otto"


def test_every_incident_is_reachable_page_by_page(client: TestClient, centre: Centre) -> None:
    open_id, resolved_id = _crowded(client, centre)
    make_user(centre, "root", "admin", "*")
    root, _ = log_in(client, "root")
    seen: List[int] = []
    query = "/api/v1/incidents?limit=400"
    while True:
        page = _ids(root.get(query))
        seen += page
        if len(page) < 400:
            break
        query = f"/api/v1/incidents?limit=400&before={page[-1]}"
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == CROWD + 2
    assert seen[-2:] == [resolved_id, open_id]


def test_numbers_no_column_can_hold_are_refused_not_a_500(client: TestClient, centre: Centre) -> None:
    open_id, _ = _crowded(client, centre)
    make_user(centre, "root", "admin", "*")
    root, csrf = log_in(client, "root")
    huge = str(10**20)
    before = snapshot(centre)
    for answer in (
        root.get(f"/api/v1/incidents/{huge}"),
        root.get(f"/incidents/{huge}"),
        root.post(f"/api/v1/incidents/{huge}/ack", json={"note": "x"}, headers={"X-CSRF-Token": csrf}),
        post(root, csrf, f"/incidents/{huge}/ack"),
        root.get(f"/api/v1/incidents?before={huge}"),
        root.get(f"/api/v1/nodes?offset={huge}"),
        root.get(f"/api/v1/findings?offset={huge}"),
        root.get("/api/v1/incidents/0"),
        root.get("/api/v1/incidents?before=0"),
    ):
        assert answer.status_code == 422, (answer.request.url, answer.status_code, answer.text)
        assert answer.json()["error"] == "malformed" and "Input should be" in answer.json()["message"]
    assert snapshot(centre) == before
    largest = 2**63 - 1  # the largest a column holds is a number like any other: no such incident
    assert root.get(f"/api/v1/incidents/{largest}").status_code == 404
    assert root.get(f"/api/v1/nodes?offset={largest}").json() == []
    assert root.get(f"/api/v1/incidents/{open_id}").status_code == 200
