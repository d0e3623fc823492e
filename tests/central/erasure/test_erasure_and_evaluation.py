"""An erasure (M08) and the evaluator, on SQLite and PostgreSQL: a report stored before an erasure and judged
after it is judged on its scrubbed body, never on what ingest parsed before, and on PostgreSQL an evaluator
that read a node's reports before an erasure committed cannot write their values over the scrubbed rows."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from typing import Any, List

import pytest
from sqlalchemy import select

from central.db.engine import read_tx, write_tx
from central.db.schema import findings, latest_evidence
from central.erasure.erase import erase
from central.judging.evaluation import Evaluated, evaluate_pending
from central.runtime.service import Centre
from tests.central.conftest import Node, evidence_record, stored_not_judged

NAME = "alice"
SOCKET = {
    "protocol": "tcp",
    "address": "0.0.0.0",
    "port": 23,
    "exposure": "remote",
    "process": "telnetd",
    "user": NAME,
    "cmdline": f"/home/{NAME}/bin/telnetd -debug",
}


def _derived(centre: Centre, agent_id: str) -> List[str]:
    """What the centre derived from the node's evidence, as text."""
    with read_tx(centre.engine) as conn:
        records = conn.execute(select(latest_evidence.c.record).where(latest_evidence.c.agent_id == agent_id))
        observed = conn.execute(select(findings.c.observed).where(findings.c.agent_id == agent_id))
        return [json.dumps(value) for value in [*records.scalars(), *observed.scalars()]]


def _erase(conn: Any, node: Node) -> None:
    erase(conn, node.agent_id, "GDPR-1", "cli:test", datetime.now(timezone.utc), "test")


def test_a_report_judged_after_an_erasure_is_judged_on_its_scrubbed_body(centre: Centre, node: Node) -> None:
    stored_not_judged(centre, node, node.report(evidence_record("ports", {"sockets": [SOCKET]})))
    assert len(centre.parsed) == 1  # ingest's parse of the body as sent, kept for the evaluator
    with write_tx(centre.engine) as conn:
        _erase(conn, node)
    assert evaluate_pending(centre.engine, centre.policy.policy, parsed=centre.parsed).reports == 1
    derived = _derived(centre, node.agent_id)
    assert derived and not any(NAME in text for text in derived), derived


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_evaluator_waits_for_an_erasure_of_the_node_it_judges(centre: Centre, node: Node) -> None:
    """PostgreSQL only: on SQLite a write transaction has the database to itself, so the two cannot overlap."""
    stored_not_judged(centre, node, node.report(evidence_record("ports", {"sockets": [SOCKET]})))
    erased, finish = threading.Event(), threading.Event()

    def erasure() -> None:
        with write_tx(centre.engine) as conn:
            _erase(conn, node)
            erased.set()
            finish.wait(10)  # the erasure is done and not yet committed

    judged: List[Evaluated] = []
    eraser = threading.Thread(target=erasure)
    eraser.start()
    assert erased.wait(10)
    judge = threading.Thread(target=lambda: judged.append(evaluate_pending(centre.engine, centre.policy.policy)))
    judge.start()
    judge.join(1.0)
    assert judge.is_alive() and not judged  # waiting for the erasure, not judging the body it read before
    finish.set()
    eraser.join(10)
    judge.join(10)
    assert judged and judged[0].reports == 1
    derived = _derived(centre, node.agent_id)
    assert derived and not any(NAME in text for text in derived), derived
