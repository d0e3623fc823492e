"""The export tests' fleet: months of history on two tenants, with a hostile node name, a waiver,
a window and resolved incidents (the ``fleet`` fixture in conftest.py builds it)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from central.alerting import manage
from central.db.engine import read_tx, write_tx
from central.db.schema import agents, finding_changes, incident_events, incidents, reports
from central.export.build import build
from central.export.model import Request
from central.runtime.service import Centre
from tests.central.conftest import Node, evidence_record, new_token

RULE = "ports-no-plaintext-remote"
TELNET = {
    "protocol": "tcp",
    "address": "0.0.0.0",
    "port": 23,
    "exposure": "all",
    "tags": ["plaintext_remote"],
    "services": ["telnet"],
    "process": {"name": "<b>inetd</b>"},
}
OBSERVED = [
    {
        "protocol": "tcp",
        "address": "0.0.0.0",
        "port": 23,
        "services": ["telnet"],
        "process.name": "<b>inetd</b>",
        "process.pid": None,
    }
]
HOSTILE = "<script>alert(1)</script>"
BASE = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=100)


def day(n: float) -> datetime:
    return BASE + timedelta(days=n)


def backdate(centre: Centre, node: Node, reports_at: List[datetime]) -> None:
    """History as if it had happened over months: enrolment and first verdicts on day 0, the
    rule failing on day 30 and passing again on day 60 (one report each)."""
    with write_tx(centre.engine) as conn:
        conn.execute(update(agents).where(agents.c.id == node.agent_id).values(enrolled_at=day(0)))
        rows = conn.execute(
            select(finding_changes.c.id, finding_changes.c.rule_id)
            .where(finding_changes.c.agent_id == node.agent_id)
            .order_by(finding_changes.c.id)
        ).all()
        seen: Dict[str, int] = {}
        for row_id, rule_id in rows:
            step = seen.get(rule_id, 0)
            seen[rule_id] = step + 1
            conn.execute(update(finding_changes).where(finding_changes.c.id == row_id).values(at=day(30 * step)))
        for index, at in enumerate(reports_at, start=1):
            conn.execute(
                update(reports)
                .where(reports.c.agent_id == node.agent_id, reports.c.chain_index == index)
                .values(received_at=at, collected_at=at)
            )


def make_fleet(client: TestClient, centre: Centre) -> Dict[str, Any]:
    """acme: a node with a hostile name whose telnet rule went stale -> failing -> passing; a quiet
    acme node; globex: a node that must never appear in acme's export."""
    acme = new_token(centre, tenant="acme", group="web", labels={"room": "b2"})
    a = Node(client, hostname=HOSTILE)
    a.enrol(acme)
    bad = a.report(evidence_record("ports", {"sockets": [TELNET]}))
    good = a.report(evidence_record("ports", {"sockets": []}))
    assert a.send(bad).status_code == 200 and a.send(good).status_code == 200
    backdate(centre, a, [day(30), day(60)])
    with write_tx(centre.engine) as conn:  # enrolment refuses such labels today; older rows may hold anything
        conn.execute(
            update(agents).where(agents.c.id == a.agent_id).values(labels={"room": "<img src=x onerror=alert(1)>"})
        )
    b = Node(client, hostname="quiet.acme.example")
    b.enrol(acme)
    backdate(centre, b, [])
    g = Node(client, hostname="globex-secret.example")
    g.enrol(new_token(centre, tenant="globex"))
    assert g.send(g.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
    backdate(centre, g, [day(30)])
    with write_tx(centre.engine) as conn:
        waiver = manage.create_waiver(
            conn,
            day(35),
            "alice",
            manage.Scope(agent_id=a.agent_id),
            RULE,
            "telnet for a <legacy> device",
            "bob",
            day(50),
        )
        window = manage.create_window(
            conn, day(35), "alice", manage.Scope(tenant="acme"), day(36), day(37), "patching", []
        )
        for node in (a, g):
            incident = conn.execute(
                incidents.insert()
                .returning(incidents.c.id)
                .values(
                    agent_id=node.agent_id,
                    rule_id=RULE,
                    kind="finding",
                    status="resolved",
                    severity="high",
                    title=f"{RULE} failing",
                    controls=["M07"],
                    observed=OBSERVED,
                    dedup_key=f"{node.agent_id}:{RULE}",
                    opened_at=day(30),
                    resolved_at=day(60),
                    acknowledged_at=day(31),
                    acknowledged_by="alice",
                )
            ).scalar_one()
            for at, kind, actor in (
                (day(30), "detected", None),
                (day(31), "acknowledged", "alice"),
                (day(60), "resolved", None),
            ):
                conn.execute(incident_events.insert().values(incident_id=incident, at=at, kind=kind, actor=actor))
    return {"a": a, "b": b, "g": g, "bad": bad, "good": good, "waiver": waiver, "window": window}


def export(centre: Centre, req: Request) -> Dict[str, Any]:
    with read_tx(centre.engine) as conn:
        return build(conn, req, centre.policy.policy, now=day(100))
