"""PostgreSQL restarted under load (fast and immediate mode), on a server of the test's own.

A centre on it receives from two real agent daemons and from eight signed nodes that send their
reports one after another and retry the same bytes until the centre answers 200.  The server is
restarted while they deliver.  Afterwards every report is in the ledger exactly once (a retried one
the first attempt had stored is answered as a duplicate), the agents' spools are empty, /healthz is
ok again and ``tillsyn-central verify`` passes.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Dict, List

import pytest
import requests

from agent.collect import run_collectors
from agent.config import load as load_config
from tests.centre_process import CentreProcess
from tests.e2e.harness import (
    AgentProcess,
    Fleet,
    assert_exactly_once,
    grows_past,
    ledger,
    stored_seqs,
    wait_until,
)
from tests.reliability.postgres import PgInstance
from tests.reliability.settle import stop_drained
from tests.reliability.signed_load import SignedLoad

LOAD_NODES = 8


def _spooled(agent: AgentProcess) -> int:
    return len(agent.spooled_logged())


def _health(centre: CentreProcess) -> Dict[str, object]:
    try:
        answer = requests.get(centre.url + "/healthz", timeout=10)
    except requests.RequestException as err:
        return {"status": f"no answer: {type(err).__name__}"}
    body: Dict[str, object] = answer.json()
    return body


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restarted_under_load_loses_and_doubles_nothing(
    mode: str, tmp_path: Path, postgres: PgInstance, fleet: Fleet
) -> None:
    centre = CentreProcess(tmp_path / "centre", database_url=postgres.create_database("tillsyn")).start()
    try:
        _restart_under_load(mode, centre, postgres, fleet)
    finally:
        centre.stop()


def _restart_under_load(mode: str, centre: CentreProcess, postgres: PgInstance, fleet: Fleet) -> None:
    nodes: List[AgentProcess] = [fleet.make(centre, name=f"node{i}").start() for i in range(2)]
    for agent in nodes:
        wait_until(partial(stored_seqs, centre, agent.agent_id), 30, agent.tail)
    load = SignedLoad(centre, LOAD_NODES, run_collectors(load_config(nodes[0].config, required=True))).start()
    try:
        wait_until(lambda: load.acknowledged() >= 30, 60, lambda: f"30 load reports, have {load.acknowledged()}")
        before = set(postgres.backend_pids())
        spooled = [len(a.spooled_logged()) for a in nodes]
        for agent in nodes:
            agent.nudge()  # a collection round while the server goes away
        postgres.restart(mode)
        restarted_at = load.acknowledged()
        assert not before & set(postgres.backend_pids()), "the centre's sessions survived the restart"
        for agent, count in zip(nodes, spooled):
            agent.nudge()
            wait_until(grows_past(partial(_spooled, agent), count), 30, agent.tail)
        wait_until(lambda: load.acknowledged() >= restarted_at + 30, 60, lambda: f"load after, {load.failures()}")
    finally:
        load.stop()
    for agent in nodes:
        stop_drained(agent, centre)
    # ok again, and every stored report judged (none lost from the evaluation queue by the restart)
    wait_until(
        lambda: _health(centre).get("status") == "ok" and _health(centre).get("evaluation_backlog") == 0,
        60,
        lambda: f"/healthz ok with nothing left to judge: {_health(centre)}",
    )
    assert "could not be judged" not in (centre.state / "central.log").read_text(errors="replace")

    api_key = centre.api_key()
    for agent in nodes:
        assert_exactly_once(agent, centre, api_key=api_key)
        assert agent.proc is None
    for node in load.nodes:
        rows = ledger(centre, node.agent_id)
        assert [r.report_id for r in rows] == node.sent, f"load node {node.index}: ledger differs from what was sent"
        assert [r.seq for r in rows] == list(range(1, node.seq + 1))
        assert [r.chain_index for r in rows] == list(range(1, len(rows) + 1))
    failures = load.failures()
    duplicates = sum(n.duplicates for n in load.nodes)
    # the database away is the centre's 503 "send it again later", one log line each, no traceback
    assert set(failures) <= {"503", "ConnectionError", "ReadTimeout"}, failures
    log = (centre.state / "central.log").read_text(errors="replace")
    assert "/api/v1/reports failed" not in log and "/api/v1/heartbeat failed" not in log  # no 500, no traceback
    # The figures for docs/reliability.md (pytest -s shows them).
    print(
        "postgres restart "
        + json.dumps(
            {
                "mode": mode,
                "load_reports": load.acknowledged(),
                "agent_reports": sum(len(stored_seqs(centre, a.agent_id)) for a in nodes),
                "failed_attempts": failures,
                "answered_as_duplicate": duplicates,
                "health": _health(centre),
            },
            sort_keys=True,
        )
    )
