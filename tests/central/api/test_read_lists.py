"""The node and finding lists on SQLite and PostgreSQL: filters and pages worked out in the database
agree with the whole list, the counts with a node's own, and the API's bytes with what it sent before."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from bench.fleet_render import _populate
from central.api.app import create_app
from central.db.engine import read_tx, write_tx
from central.db.schema import agents, findings
from central.judging import node_states, read_queries
from central.judging.node_states import FLEET_STATES
from central.runtime.service import Centre, open_centre
from tests.central.conftest import api_key, database_url, make_config, pg_server  # noqa: F401  (fixtures)

NODES = 120


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[Centre]:  # noqa: F811
    centre = open_centre(make_config(tmp_path, database_url))
    _populate(centre.engine, NODES)
    with write_tx(centre.engine) as conn:  # a revoked node, one without findings yet, labels and health
        now = datetime.now(timezone.utc)
        conn.execute(agents.update().where(agents.c.id == "bench00000001").values(revoked_at=now))
        conn.execute(findings.delete().where(findings.c.agent_id == "bench00000002"))
        conn.execute(
            agents.update()
            .where(agents.c.id == "bench00000003")
            .values(labels={"role": "db", "rack": "b2"}, health={"spool": 3, "load": 0.25, "note": "é<"})
        )
    yield centre
    centre.stop()


@pytest.mark.parametrize("looked_up", [500, 10])  # finding totals looked up per node, or counted in one pass
def test_node_pages_and_filters_agree_with_the_whole_list(
    store: Centre, looked_up: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_states, "LOOKED_UP", looked_up)
    with read_tx(store.engine) as conn:
        everything = read_queries.list_nodes(conn, limit=10000)
        assert [n["hostname"] for n in everything] == sorted(n["hostname"] for n in everything)
        assert len(everything) == NODES
        for node in everything:  # the same fields, state and counts as the node on its own
            assert read_queries.get_node(conn, node["id"]) == node
        by_id = {n["id"]: n for n in everything}
        assert by_id["bench00000001"]["state"] == "revoked" and by_id["bench00000000"]["state"] == "silent"
        assert by_id["bench00000002"]["state"] == "stale" and set(by_id["bench00000002"]["findings"].values()) == {0}
        assert by_id["bench00000003"]["labels"] == {"role": "db", "rack": "b2"}
        assert by_id["bench00000003"]["health"] == {"spool": 3, "load": 0.25, "note": "é<"}
        assert sum(by_id["bench00000004"]["findings"].values()) == 22

        pages = [read_queries.list_nodes(conn, limit=25, offset=o) for o in range(0, NODES + 25, 25)]
        assert [n for p in pages for n in p] == everything and pages[-1] == []
        seen_states = set()
        for state in FLEET_STATES:
            expected = [n for n in everything if n["state"] == state]
            seen_states.update(n["state"] for n in expected)
            assert read_queries.list_nodes(conn, state=state, limit=10000) == expected, state
            assert read_queries.list_nodes(conn, state=state, limit=3, offset=1) == expected[1:4], state
        assert seen_states == set(FLEET_STATES)

        matching = [n for n in everything if "node001" in n["hostname"]]
        assert read_queries.list_nodes(conn, search="NODE001", limit=10000) == matching and len(matching) == 20
        assert read_queries.list_nodes(conn, search="NODE001", limit=4, offset=8) == matching[8:12]
        assert read_queries.list_nodes(conn, search="%", limit=10000) == []  # % is literal
        tenant = read_queries.list_nodes(conn, state="failing", visible=agents.c.tenant.in_(["tenant03"]), limit=10000)
        assert tenant == [n for n in everything if n["tenant"] == "tenant03" and n["state"] == "failing"]
        assert read_queries.state_counts(conn) == {s: [n["state"] for n in everything].count(s) for s in FLEET_STATES}


def test_the_api_list_pages_and_sends_what_fastapi_sent(store: Centre) -> None:
    headers = api_key(store)
    with read_tx(store.engine) as conn:
        everything = read_queries.list_nodes(conn, limit=10000)
    with TestClient(create_app(store, duties=False)) as client:
        full = client.get("/api/v1/nodes?limit=10000", headers=headers)
        page = client.get("/api/v1/nodes?limit=7&offset=30&state=failing", headers=headers)
    # the bytes FastAPI made of the list before (validated against the route's model, dumped by pydantic)
    assert full.content == TypeAdapter(List[Dict[str, Any]]).dump_json(everything)
    assert full.headers["content-type"] == "application/json"
    assert full.json()[0]["enrolled_at"].endswith("Z")
    failing = [n for n in full.json() if n["state"] == "failing"]
    assert page.json() == failing[30:37] and len(page.json()) == 7


def test_findings_are_filtered_by_control_before_paging(store: Centre) -> None:
    with write_tx(store.engine) as conn:  # rule-03 now serves two controls, M02 and M07
        conn.execute(findings.update().where(findings.c.rule_id == "rule-03").values(controls=["M02", "M07"]))
    with read_tx(store.engine) as conn:
        every = read_queries.list_findings(conn, limit=100000)
        m07 = [f for f in every if "M07" in f["controls"]]
        assert {f["rule_id"] for f in m07} == {"rule-03", "rule-06", "rule-19"}  # 6 and 19: M07 alone
        assert read_queries.list_findings(conn, control="M07", limit=100000) == m07
        assert read_queries.list_findings(conn, control="M07", limit=50, offset=100) == m07[100:150]
        assert len(m07[100:150]) == 50  # a full page: filtered before the limit, not after
        failing = read_queries.list_findings(conn, control="M02", status="failing", limit=100000)
        assert failing == [f for f in every if "M02" in f["controls"] and f["status"] == "failing"] and failing
        assert read_queries.list_findings(conn, control="M0", limit=100000) == []  # an item, not part of one
    headers = api_key(store)
    with TestClient(create_app(store, duties=False)) as client:
        page = client.get("/api/v1/findings?control=M07&limit=20&offset=5", headers=headers).json()
    assert [(f["agent_id"], f["rule_id"]) for f in page] == [(f["agent_id"], f["rule_id"]) for f in m07[5:25]]


def test_json_past_what_orjson_takes_goes_to_pydantic() -> None:
    from central.api.read_routes import _json

    assert _json([{"n": 2**70, "at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)}]) == (
        b'[{"n":1180591620717411303424,"at":"2026-01-02T03:04:05.000006Z"}]'
    )
    assert _json({"at": datetime(2026, 1, 2, tzinfo=timezone.utc)}) == b'{"at":"2026-01-02T00:00:00Z"}'
