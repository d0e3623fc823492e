"""Evaluation after ingest, on SQLite and PostgreSQL: ingest stores, chains and queues; the
evaluator judges the queue in order, in batches, once, and a centre that was killed between
the two picks the queue up when it starts again."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from central.api.app import create_app
from central.db.engine import make_engine
from central.db.schema import latest_evidence, pending_evaluation
from central.judging.evaluation import evaluate_batch, evaluate_pending
from central.runtime.duties import run_once
from central.runtime.service import Centre, open_centre
from evidence.model import Status
from evidence.signing import sign
from tests.central.conftest import (
    Node,
    api_key,
    evidence_record,
    make_config,
    new_token,
    snapshot,
    stored_not_judged,
)
from tests.central.judging.helpers import RULE, SSH, TELNET, _ports, _status, changes
from tests.centre_process import CentreProcess


def _count(centre: Centre, table: Any) -> int:
    with centre.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_ingest_queues_and_evaluation_judges_once(centre: Centre, node: Node) -> None:
    bad = node.report(_ports(SSH, TELNET))
    assert stored_not_judged(centre, node, bad) == [bad["report_id"]]
    # stored and acknowledged, not yet judged: the finding still says what it said before
    assert _count(centre, pending_evaluation) == 1
    assert _status(centre, node.agent_id) == "stale"
    assert _count(centre, latest_evidence) == 0

    done = evaluate_pending(centre.engine, centre.policy.policy)
    assert (done.reports, done.turned_failing, done.unreadable) == (1, True, 0)
    assert _status(centre, node.agent_id) == "failing"
    assert _count(centre, pending_evaluation) == 0
    assert _count(centre, latest_evidence) == 1
    # a second run finds nothing to do and records nothing twice
    assert evaluate_pending(centre.engine, centre.policy.policy).reports == 0
    assert changes(centre, node.agent_id, RULE) == [(None, "stale", None), ("stale", "failing", bad["report_id"])]


def test_a_backlog_is_judged_in_order_whatever_the_batch_size(centre: Centre, node: Node) -> None:
    reports = [node.report(_ports(SSH, TELNET)), node.report(_ports(SSH)), node.report(_ports(TELNET))]
    other = Node(node.client, hostname="web2.example.net")
    other.enrol(new_token(centre))
    reports_other = [other.report(_ports(SSH)), other.report(_ports(SSH, TELNET))]
    for a, b in zip(reports, reports_other):
        stored_not_judged(centre, node, a)
        stored_not_judged(centre, other, b)
    stored_not_judged(centre, node, reports[2])

    # one report per transaction: the same history as one batch would write
    while evaluate_batch(centre.engine, centre.policy.policy, limit=1).reports:
        pass
    assert changes(centre, node.agent_id, RULE) == [
        (None, "stale", None),
        ("stale", "failing", reports[0]["report_id"]),
        ("failing", "passing", reports[1]["report_id"]),
        ("passing", "failing", reports[2]["report_id"]),
    ]
    assert changes(centre, other.agent_id, RULE) == [
        (None, "stale", None),
        ("stale", "passing", reports_other[0]["report_id"]),
        ("passing", "failing", reports_other[1]["report_id"]),
    ]
    with centre.engine.connect() as conn:
        latest = conn.execute(
            select(latest_evidence.c.report_id).where(latest_evidence.c.agent_id == node.agent_id)
        ).scalar_one()
    assert latest == reports[2]["report_id"]


def test_two_evaluators_share_a_queue_without_judging_twice(tmp_path: Path, centre: Centre, node: Node) -> None:
    """Two centre processes on one database: each report is judged once, in order."""
    sent: List[str] = []
    for i in range(30):
        envelope = node.report(_ports(SSH, TELNET) if i % 2 == 0 else _ports(SSH))
        sent += stored_not_judged(centre, node, envelope)
    second = make_engine(str(centre.engine.url.render_as_string(hide_password=False)))
    totals: List[int] = []
    errors: List[BaseException] = []

    def drain(engine: Any) -> None:
        try:
            count = 0
            deadline = time.monotonic() + 60
            while _count(centre, pending_evaluation) and time.monotonic() < deadline:
                count += evaluate_batch(engine, centre.policy.policy, limit=4).reports
            totals.append(count)
        except BaseException as err:  # noqa: BLE001  reported below, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=drain, args=(e,)) for e in (centre.engine, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    second.dispose()
    assert not errors, errors
    assert sum(totals) == 30
    history = changes(centre, node.agent_id, RULE)
    assert len(history) == 31  # stale, then a change for every report: alternating, none lost or doubled
    assert [h[2] for h in history[1:]] == sent
    assert _status(centre, node.agent_id) == "passing"


def test_the_evaluator_thread_judges_what_ingest_acknowledged(centre: Centre) -> None:
    with TestClient(create_app(centre, duties=True)) as client:
        node = Node(client)
        node.enrol(new_token(centre))
        bad = node.report(_ports(SSH, TELNET))
        assert node.send(bad).status_code == 200
        evaluated = centre.metrics.evaluated._value  # type: ignore[attr-defined]

        def judged() -> bool:
            # the verdict commits before the thread counts it: wait for both, not just the first
            return _status(centre, node.agent_id) == "failing" and evaluated.get() >= 1

        deadline = time.monotonic() + 20
        while not judged() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(centre, node.agent_id) == "failing"
        assert evaluated.get() == 1
        health = client.get("/healthz").json()
        assert health["evaluation_backlog"] == 0


def test_a_centre_killed_before_evaluating_judges_the_queue_when_it_starts(tmp_path: Path, database_url: str) -> None:
    """SIGKILL after a report was acknowledged but before it was judged: nothing is lost."""
    process = CentreProcess(tmp_path / "centre", database_url=database_url)
    process.start()
    try:
        token = process.token("--ttl", "1h")
        node, answer = _enrol_over_http(process, token)
        process.kill()
        # the acknowledged-but-unjudged state a kill leaves (stored, chained, queued), made by the
        # production path of a second centre process on the same database, killed in turn
        other = open_centre(make_config(tmp_path / "other", database_url))
        try:
            with TestClient(create_app(other, duties=False)) as client:
                node.client = client
                assert len(stored_not_judged(other, node, node.report(_ports(SSH, TELNET)))) == 1
        finally:
            other.stop()
        process.start()
        headers = process.api_key()
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            found = process.get(f"/api/v1/findings?node={node.agent_id}&rule={RULE}", headers)
            status = found[0]["status"]
            if status == "failing":
                break
            time.sleep(0.1)
        assert status == "failing", answer
        health = requests.get(process.url + "/healthz", timeout=5).json()
        assert health["evaluation_backlog"] == 0
    finally:
        process.stop()


def _enrol_over_http(process: CentreProcess, token: str) -> Tuple[Node, Dict[str, Any]]:
    node = Node(client=None)  # type: ignore[arg-type]  # enrolled over real HTTP below
    body = json.dumps(
        {
            "token": token,
            "hostname": node.hostname,
            "machine_id": node.machine_id,
            "public_key": node.public_key,
            "agent_version": "test",
        }
    ).encode()
    response = requests.post(
        process.url + "/api/v1/enrol", data=body, headers={"X-Tillsyn-Signature": sign(node.key, body)}, timeout=10
    )
    assert response.status_code == 200, response.text
    answer: Dict[str, Any] = response.json()
    node.agent_id = answer["agent_id"]
    return node, answer


def test_numbers_past_64_bits_in_evidence_are_kept_exactly(client: TestClient, centre: Centre, node: Node) -> None:
    """JSON columns are read and written by orjson where it can; a number it would turn into a float
    (or refuse) goes the standard library's way, so evidence is stored as the agent sent it."""
    huge = 2**70 + 1
    record = evidence_record("ports", {"sockets": [], "bytes_seen": huge, "name": "x" * 3})
    assert node.send(node.report(record)).status_code == 200
    with centre.engine.connect() as conn:
        stored = conn.execute(
            select(latest_evidence.c.record).where(latest_evidence.c.agent_id == node.agent_id)
        ).scalar_one()
    assert stored["observed"]["bytes_seen"] == huge and isinstance(stored["observed"]["bytes_seen"], int)
    shown = client.get(f"/api/v1/nodes/{node.agent_id}", headers=api_key(centre)).json()
    assert shown["hostname"] == node.hostname


def _poisoned(node: Node) -> Dict[str, Any]:
    """A report with a NUL in its collector error, which becomes a finding's message."""
    record = replace(evidence_record("ports", {}, status=Status.ERROR), error="boom\x00")
    return node.report(record)


def test_a_report_with_a_nul_character_is_refused_and_nothing_is_stored(centre: Centre, node: Node) -> None:
    before = snapshot(centre)
    response = node.send(_poisoned(node))
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["message"]
    assert snapshot(centre) == before


def test_one_report_the_database_refuses_does_not_stop_the_others(
    centre: Centre, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored before ingest refused NUL (or by a future gap like it): PostgreSQL refuses the finding's
    message; that report is logged and left unjudged, the rest of the queue is judged."""
    other = Node(node.client, hostname="web2.example.net")
    other.enrol(new_token(centre))
    monkeypatch.setattr("central.ingest.receive.refuse_nul", lambda *_args, **_kw: None)
    stored_not_judged(centre, node, _poisoned(node))
    stored_not_judged(centre, other, other.report(_ports(SSH, TELNET)))
    done = evaluate_pending(centre.engine, centre.policy.policy)
    assert done.reports == 2 and _count(centre, pending_evaluation) == 0
    assert _status(centre, other.agent_id) == "failing"
    if centre.engine.dialect.name == "postgresql":  # text cannot hold NUL there
        assert done.failed == 1
        assert _status(centre, node.agent_id) == "stale"
    else:
        assert done.failed == 0
        assert _status(centre, node.agent_id) == "unknown"  # SQLite stores the NUL in the message


def test_a_node_with_reports_waiting_to_be_judged_is_not_marked_stale(centre: Centre, node: Node) -> None:
    stored_not_judged(centre, node, node.report(_ports(SSH)))
    evaluate_pending(centre.engine, centre.policy.policy)
    assert _status(centre, node.agent_id) == "passing"
    stored_not_judged(centre, node, node.report(_ports(SSH)))  # newer evidence, not judged yet
    much_later = datetime.now(timezone.utc) + timedelta(days=30)
    assert run_once(centre.engine, centre.policy, 10**9, much_later).stale == 0
    assert _status(centre, node.agent_id) == "passing"
    evaluate_pending(centre.engine, centre.policy.policy)
    assert run_once(centre.engine, centre.policy, 10**9, much_later).stale >= 1  # judged, and now old
    assert _status(centre, node.agent_id) == "stale"


def test_a_batch_writes_its_changes_in_one_statement_and_in_order(centre: Centre, node: Node) -> None:
    """Three reports of one node judged in one batch: the history is the one a report per batch writes
    (test above), and its rows are written by a single statement, after the findings."""
    reports = [node.report(_ports(SSH, TELNET)), node.report(_ports(SSH)), node.report(_ports(TELNET))]
    for report in reports:
        stored_not_judged(centre, node, report)
    before = len(changes(centre, node.agent_id, RULE))
    statements: List[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(centre.engine, "before_cursor_execute", seen)
    try:
        assert evaluate_batch(centre.engine, centre.policy.policy).reports == 3
    finally:
        event.remove(centre.engine, "before_cursor_execute", seen)
    assert changes(centre, node.agent_id, RULE)[before:] == [
        ("stale", "failing", reports[0]["report_id"]),
        ("failing", "passing", reports[1]["report_id"]),
        ("passing", "failing", reports[2]["report_id"]),
    ]
    writes = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO FINDING_CHANGES")]
    assert len(writes) == 1, writes
