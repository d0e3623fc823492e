"""The dashboard's own queries: node state in SQL agrees with the API's, history is rebuilt right."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from bench.fleet_render import _populate
from central.db.engine import read_tx, write_tx
from central.db.schema import agents, finding_changes, findings
from central.judging import read_queries
from central.runtime.service import Centre, open_centre
from central.web import history, page_queries
from tests.central.conftest import database_url, make_config, pg_server  # noqa: F401  (fixtures)


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[Centre]:  # noqa: F811
    centre = open_centre(make_config(tmp_path, database_url))
    yield centre
    centre.stop()


def test_fleet_state_counts_and_pages_agree_with_the_api(store: Centre) -> None:
    _populate(store.engine, 300)
    with write_tx(store.engine) as conn:  # a node without findings yet, and a revoked one
        conn.execute(
            agents.update().where(agents.c.id == "bench00000001").values(revoked_at=datetime.now(timezone.utc))
        )
        conn.execute(findings.delete().where(findings.c.agent_id == "bench00000002"))
    with read_tx(store.engine) as conn:
        expected = {n["id"]: n["state"] for n in read_queries.list_nodes(conn, limit=10000)}
        pages = [page_queries.fleet(conn, None, None, None, p, size=40) for p in range(1, 10)]
        failing = page_queries.fleet(conn, None, "failing", None, 1, size=1000)
        tenant = page_queries.fleet(conn, agents.c.tenant.in_(["tenant03"]), None, "NODE00", 1, size=1000)
    seen = {n["id"]: n["state"] for p in pages for n in p.nodes}
    assert seen == expected
    assert expected["bench00000001"] == "revoked" and expected["bench00000002"] == "stale"
    assert pages[0].counts == {s: list(expected.values()).count(s) for s in page_queries.FLEET_STATES}
    assert pages[0].total == 300 and [len(p.nodes) for p in pages][-2:] == [20, 0]
    assert {n["state"] for n in failing.nodes} == {"failing"} and failing.total == len(failing.nodes)
    assert all("M" in c for n in failing.nodes for c in n["failing_controls"]) and failing.nodes[0]["failing_controls"]
    assert {n["tenant"] for n in tenant.nodes} == {"tenant03"} and all("node00" in n["hostname"] for n in tenant.nodes)


def test_compliance_history_is_rebuilt_from_finding_changes(store: Centre) -> None:
    _populate(store.engine, 2)
    now = datetime.now(timezone.utc).replace(hour=12)
    with write_tx(store.engine) as conn:
        conn.execute(findings.delete().where(findings.c.rule_id != "rule-06"))  # keep one M07 rule: rule-06
        conn.execute(findings.update().values(status="passing"))
        for agent in ("bench00000000", "bench00000001"):
            conn.execute(
                finding_changes.insert().values(
                    agent_id=agent, rule_id="rule-06", from_status=None, to_status="failing", at=now - timedelta(days=5)
                )
            )
        conn.execute(
            finding_changes.insert().values(
                agent_id="bench00000000",
                rule_id="rule-06",
                from_status="failing",
                to_status="passing",
                at=now - timedelta(days=3),
            )
        )
        conn.execute(
            finding_changes.insert().values(
                agent_id="bench00000001",
                rule_id="rule-06",
                from_status="failing",
                to_status="passing",
                at=now - timedelta(days=1),
            )
        )
    with read_tx(store.engine) as conn:
        (m07,) = history.compliance(conn, now, None, ["M07"], days=8)
    # oldest first: no finding yet (days 7, 6), both failing (5, 4), one of two passing (3, 2), both (1, 0)
    assert m07.shares == [None, None, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    assert m07.nodes == [0, 0, 2, 2, 2, 2, 2, 2]
    line = history.sparkline(m07)
    assert line["latest"] == 1.0 and len(line["points"].split()) == 6
