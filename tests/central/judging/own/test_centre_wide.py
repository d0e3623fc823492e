"""A cause in the centre that fails an own measure on every node (a viewer holding every tenant, the
retention duty overdue) opens one incident, not one per node; a node's own cause still opens its own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from central.alerting.incidents import run_round
from central.alerting.settings import Alerting
from central.db.engine import read_tx, write_tx
from central.db.schema import agents, duty_runs, findings, incidents, users
from central.judging.own import judge as own
from central.judging.own.settings import Measures
from central.runtime.service import Centre
from tests.central.conftest import Node, new_token
from tests.central.people import make_user

SETTINGS = Alerting.model_validate({"open_after_s": 0, "resolve_after_s": 0})
SEPARATION = "centre-tenant-separation"
ERASURE = "centre-retention-erasure"


def _round(centre: Centre, now: datetime) -> None:
    with write_tx(centre.engine) as conn:
        own.run(conn, Measures(), 0, now)
        run_round(conn, SETTINGS, now, centre.policy.policy)


def _open(centre: Centre, rule: str) -> List[Dict[str, Any]]:
    with read_tx(centre.engine) as conn:
        query = select(incidents).where(incidents.c.rule_id == rule, incidents.c.status == "open")
        return [dict(r) for r in conn.execute(query.order_by(incidents.c.id)).mappings()]


def _failing(centre: Centre, rule: str) -> int:
    with read_tx(centre.engine) as conn:
        query = select(findings.c.agent_id).where(findings.c.rule_id == rule, findings.c.status == "failing")
        return len(conn.execute(query).all())


def test_a_centre_wide_cause_opens_one_incident_and_a_nodes_own_cause_its_own(
    client: TestClient, centre: Centre
) -> None:
    nodes = []
    for i, tenant in enumerate(("acme", "acme", "globex")):
        node = Node(client, hostname=f"web{i}.example.net")
        node.enrol(new_token(centre, tenant=tenant))
        nodes.append(node)
    now = datetime.now(timezone.utc)
    with write_tx(centre.engine) as conn:  # retention ran on time
        conn.execute(duty_runs.insert().values(name="retention", last_run_at=now))
    make_user(centre, "vera", "viewer", "*")
    _round(centre, now)
    assert _failing(centre, SEPARATION) == 3  # the measure fails on every node ...
    [wide] = _open(centre, SEPARATION)  # ... but pages once
    assert wide["message"] == "vera (viewer, every tenant) sees every tenant without being an admin", wide

    # another node losing its tenant is its own cause: its own incident, naming it
    other = next(n for n in nodes if n.agent_id != wide["agent_id"])
    with write_tx(centre.engine) as conn:
        conn.execute(update(agents).where(agents.c.id == other.agent_id).values(tenant=None))
    later = now + timedelta(seconds=10)
    _round(centre, later)
    opened = _open(centre, SEPARATION)
    assert len(opened) == 2, opened
    assert opened[1]["agent_id"] == other.agent_id
    assert opened[1]["message"].startswith(f"node {other.hostname} belongs to no tenant; vera (viewer"), opened[1]

    # vera made an admin and the tenant back: both resolve
    with write_tx(centre.engine) as conn:
        conn.execute(update(users).where(users.c.username == "vera").values(role="admin"))
        conn.execute(update(agents).where(agents.c.id == other.agent_id).values(tenant="acme"))
    _round(centre, later + timedelta(seconds=10))
    assert _open(centre, SEPARATION) == []

    # the retention duty overdue fails M08 on every node: one incident
    with write_tx(centre.engine) as conn:
        long_ago = now - timedelta(hours=2)
        conn.execute(update(duty_runs).where(duty_runs.c.name == "retention").values(last_run_at=long_ago))
    _round(centre, later + timedelta(seconds=20))
    assert _failing(centre, ERASURE) == 3
    [overdue] = _open(centre, ERASURE)
    assert overdue["message"].startswith("the retention duty last ran "), overdue
