"""Background duties on SQLite and PostgreSQL: silent nodes, stale findings, policy reload, and
two duty runs at once (threads, and two engines standing for two centre processes)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from central.api.app import create_app
from central.db.engine import make_engine, write_tx
from central.db.schema import agents, finding_changes, findings, incidents, latest_evidence
from central.ingest.receive import lock_agents
from central.judging.own.judge import in_share
from central.judging.policy_store import SHIPPED_POLICY, PolicyHolder
from central.runtime.duties import DutyResult, mark_silent, run_once
from central.runtime.service import Centre, open_centre
from tests.central.conftest import Node, api_key, evidence_record, make_config, new_token
from tests.central.judging.helpers import TELNET

PORT_RULES = {"ports-no-plaintext-remote", "ports-no-exposed-database", "ports-no-remote-service"}


def now() -> datetime:
    return datetime.now(timezone.utc)


def silent_flags(centre: Centre) -> List[bool]:
    with centre.engine.connect() as conn:
        return [bool(r.silent) for r in conn.execute(select(agents.c.silent).order_by(agents.c.hostname))]


def stale_changes(centre: Centre) -> Dict[Any, int]:
    with centre.engine.connect() as conn:
        rows = conn.execute(
            select(finding_changes.c.agent_id, finding_changes.c.rule_id, func.count())
            .where(finding_changes.c.to_status == "stale", finding_changes.c.from_status.is_not(None))
            .group_by(finding_changes.c.agent_id, finding_changes.c.rule_id)
        ).all()
    return {(a, r): n for a, r, n in rows}


def test_silent_after_three_heartbeats_and_a_heartbeat_clears_it(
    client: TestClient, centre: Centre, node: Node
) -> None:
    assert centre.config.silent_threshold_s == 180  # 3 x the 60 s heartbeat interval
    assert node.heartbeat().status_code == 200
    start = now()
    assert run_once(centre.engine, centre.policy, 180, start + timedelta(seconds=170)).silent == 0
    assert silent_flags(centre) == [False]
    assert run_once(centre.engine, centre.policy, 180, start + timedelta(seconds=190)).silent == 1
    assert run_once(centre.engine, centre.policy, 180, start + timedelta(seconds=250)).silent == 0  # once
    headers = api_key(centre)
    assert client.get(f"/api/v1/nodes/{node.agent_id}", headers=headers).json()["state"] == "silent"
    assert client.get("/api/v1/nodes?state=silent", headers=headers).json()[0]["id"] == node.agent_id
    assert node.heartbeat().status_code == 200
    assert silent_flags(centre) == [False]
    assert client.get(f"/api/v1/nodes/{node.agent_id}", headers=headers).json()["state"] == "stale"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite locks the whole database
def test_a_node_whose_heartbeat_is_being_written_is_not_marked_silent_and_not_waited_for(
    centre: Centre, node: Node
) -> None:
    """The silence duty skips a node whose row a write batch holds (its heartbeat is arriving): it
    neither waits for that batch nor marks the node; the next round looks again."""
    later = now() + timedelta(seconds=3600)
    with write_tx(centre.engine) as holding:
        lock_agents(holding, [node.agent_id])  # as the group writer does before a batch
        with write_tx(centre.engine) as conn:
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))  # a wait would fail the test, not hang it
            assert mark_silent(conn, 180, later) == 0
    with write_tx(centre.engine) as conn:
        assert mark_silent(conn, 180, later) == 1
    assert silent_flags(centre) == [True]


def test_findings_go_stale_past_max_age(client: TestClient, centre: Centre, node: Node) -> None:
    node.send(node.report(evidence_record("ports", {"sockets": []})))
    later = now() + timedelta(minutes=19)
    assert run_once(centre.engine, centre.policy, 10**6, later).stale == 0
    result = run_once(centre.engine, centre.policy, 10**6, now() + timedelta(minutes=21))
    assert result.stale == 3
    with centre.engine.connect() as conn:
        rows = conn.execute(select(findings.c.rule_id, findings.c.status, findings.c.message)).all()
    stale = {r.rule_id: r.message for r in rows if r.rule_id in PORT_RULES}
    assert set(stale) == PORT_RULES
    assert all("maximum 0.333333 h" in m for m in stale.values())
    assert {r.status for r in rows} == {"stale"}
    assert run_once(centre.engine, centre.policy, 10**6, now() + timedelta(minutes=30)).stale == 0
    assert set(stale_changes(centre).values()) == {1}


def test_two_duty_runs_at_once_mark_and_record_each_change_once(
    client: TestClient, centre: Centre, tmp_path: Path
) -> None:
    nodes = []
    for i in range(4):
        n = Node(client, hostname=f"n{i}.example.net")
        n.enrol(new_token(centre))
        n.send(n.report(evidence_record("ports", {"sockets": []})))
        nodes.append(n)
    # a second engine and policy holder: what a second centre process has of its own
    other_engine = make_engine(centre.config.db_url)
    holders = [centre.policy, PolicyHolder(SHIPPED_POLICY)]
    engines = [centre.engine, other_engine, centre.engine, other_engine]
    moment = now() + timedelta(hours=1)
    barrier = threading.Barrier(len(engines))
    results: List[DutyResult] = []
    errors: List[BaseException] = []

    def duty(i: int) -> None:
        try:
            barrier.wait()
            results.append(run_once(engines[i], holders[i % 2], 180, moment))
        except BaseException as err:  # noqa: BLE001  reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=duty, args=(i,)) for i in range(len(engines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    other_engine.dispose()
    assert errors == []
    assert sum(r.silent for r in results) == 4
    assert sum(r.stale for r in results) == 4 * len(PORT_RULES)
    assert silent_flags(centre) == [True] * 4
    counts = stale_changes(centre)
    assert len(counts) == 4 * len(PORT_RULES) and set(counts.values()) == {1}


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(SHIPPED_POLICY.read_text())
    return path


@pytest.fixture
def own_centre(tmp_path: Path, database_url: str, policy_file: Path) -> Iterator[Centre]:
    c = open_centre(make_config(tmp_path, database_url, policy=str(policy_file)))
    yield c
    c.stop()


def test_policy_reload_and_a_broken_policy_keeps_the_old_one(own_centre: Centre, policy_file: Path) -> None:
    centre = own_centre
    with TestClient(create_app(centre, duties=False)) as client:
        node = Node(client)
        node.enrol(new_token(centre))
        telnet = {"exposure": "all", "tags": ["plaintext_remote", "remote_service"], "port": 23}
        node.send(node.report(evidence_record("ports", {"sockets": [telnet]})))
        headers = api_key(centre)

        def statuses() -> Dict[str, str]:
            return {f["rule_id"]: f["status"] for f in client.get("/api/v1/findings", headers=headers).json()}

        assert statuses()["ports-no-remote-service"] == "failing"
        # a changed file: one rule removed, another disabled for this node's group of nodes (all)
        text = policy_file.read_text()
        shipped = text.count("\n  - id: ")
        start = text.index("  - id: ports-no-remote-service")
        end = min(i for i in (text.find(m, start + 1) for m in ("\n  - id: ", "\n  # ---", "\n# Overrides")) if i > 0)
        text = (
            text[:start]
            + text[end + 1 :]
            + (
                "overrides:\n  - name: all nodes\n    match: {}\n    rules:\n"
                "      power-ups-present: {enabled: false}\n      ports-no-plaintext-remote: {severity: low}\n"
            )
        )
        policy_file.write_text(text)
        result = run_once(centre.engine, centre.policy, 10**6, now())
        assert (result.ran, result.policy_reloaded) == (True, True)
        assert centre.policy.last_error is None
        now_in_force = statuses()
        assert "ports-no-remote-service" not in now_in_force and "power-ups-present" not in now_in_force
        assert now_in_force["ports-no-plaintext-remote"] == "failing"
        with centre.engine.connect() as conn:
            retired = conn.execute(
                select(finding_changes.c.rule_id, finding_changes.c.from_status).where(
                    finding_changes.c.to_status == "retired"
                )
            ).all()
            severity = conn.execute(
                select(findings.c.severity).where(findings.c.rule_id == "ports-no-plaintext-remote")
            ).scalar()
        assert sorted(map(tuple, retired)) == [("ports-no-remote-service", "failing"), ("power-ups-present", "stale")]
        assert severity == "low"  # re-evaluated on the latest evidence at reload, not at the next report
        assert client.get(f"/api/v1/nodes/{node.agent_id}", headers=headers).json()["findings"]["failing"] == 1

        # a broken policy is refused: named file, rule and reason; the old rules stay in force
        policy_file.write_text(text.replace("op: is_true}", "op: is_truthy}", 1))
        result = run_once(centre.engine, centre.policy, 10**6, now())
        assert (result.ran, result.policy_reloaded) == (True, False)
        error = centre.policy.last_error
        assert error is not None and error.startswith(f"{policy_file}: rule 'power-ups-on-line'.check.test.op: ")
        assert "unknown operator 'is_truthy'" in error
        assert len(centre.policy.policy.rules) == shipped - 1
        assert client.get("/healthz").json()["policy_error"] == error
        shown = client.get("/api/v1/policy", headers=headers).json()
        assert shown["last_error"] == error and len(shown["rules"]) == shipped - 1
        assert shown["overrides"][0]["rules"]["power-ups-present"] == {"enabled": False}
        assert len(statuses()) == shipped - 2  # one rule removed, one disabled
        # the next run does not retry the same broken file; fixing it clears the error
        assert run_once(centre.engine, centre.policy, 10**6, now()).policy_reloaded is False
        policy_file.write_text(text)
        assert run_once(centre.engine, centre.policy, 10**6, now()).policy_reloaded is True
        assert centre.policy.last_error is None and client.get("/healthz").json()["policy_error"] is None


def test_a_reload_whose_round_fails_is_judged_by_the_next_round(
    own_centre: Centre, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read once; the nodes are judged by the new policy until a round commits that, so a
    round that fails (a lost deadlock, the database gone for a moment) does not drop it."""
    centre = own_centre
    with TestClient(create_app(centre, duties=False)) as client:
        node = Node(client)
        node.enrol(new_token(centre))
    text = policy_file.read_text()
    kept = text[: text.index("  - id: ports-no-remote-service")]  # it and every rule after it removed
    policy_file.write_text(kept)

    def failing(*_: Any) -> int:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("central.runtime.duties.reevaluate", failing)
    with pytest.raises(RuntimeError):
        run_once(centre.engine, centre.policy, 10**6, now())
    assert centre.policy.judging_due
    monkeypatch.undo()
    result = run_once(centre.engine, centre.policy, 10**6, now())
    assert (result.ran, result.policy_reloaded) == (True, True)
    assert not centre.policy.judging_due
    with centre.engine.connect() as conn:
        rules = set(conn.execute(select(findings.c.rule_id).where(findings.c.agent_id == node.agent_id)).scalars())
    # retired by the second round
    assert "ports-no-remote-service" not in rules and len(rules) == kept.count("\n  - id: ")
    assert run_once(centre.engine, centre.policy, 10**6, now()).policy_reloaded is False


def test_an_override_that_shortens_max_age_is_honoured(own_centre: Centre, policy_file: Path) -> None:
    policy_file.write_text(
        policy_file.read_text()
        + "overrides:\n  - match: {}\n    rules:\n      ports-no-plaintext-remote: {max_age: 5m}\n"
    )
    centre = own_centre
    assert centre.policy.reload_if_changed() is True
    with TestClient(create_app(centre, duties=False)) as client:
        node = Node(client)
        node.enrol(new_token(centre))
        node.send(node.report(evidence_record("ports", {"sockets": []})))
    result = run_once(centre.engine, centre.policy, 10**6, now() + timedelta(minutes=10))
    assert result.stale == 1  # the shipped 20 min for the other two port rules has not passed
    assert list(stale_changes(centre)) == [(node.agent_id, "ports-no-plaintext-remote")]


def test_a_round_with_nothing_to_change_does_not_take_the_sqlite_write_lock(tmp_path: Path) -> None:
    """With alerting on and open incidents, a settled fleet's round only reads: another writer holding
    SQLite's write lock (a long ingest, a CLI) does not hold the round up, nor the round it."""
    import sqlite3

    centre = open_centre(make_config(tmp_path, f"sqlite:///{tmp_path}/c.db"))
    try:
        with TestClient(create_app(centre, duties=False)) as client:
            node = Node(client)
            node.enrol(new_token(centre))
            assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
        alerting = centre.config.alerting
        first = run_once(centre.engine, centre.policy, 10**6, now(), alerting=alerting)
        assert first.ran
        with centre.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(incidents)).scalar_one() >= 1
        other = sqlite3.connect(tmp_path / "c.db", timeout=0.1, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the write lock, held by someone else
        try:
            done: List[DutyResult] = []
            worker = threading.Thread(
                target=lambda: done.append(run_once(centre.engine, centre.policy, 10**6, now(), alerting=alerting))
            )
            worker.start()
            worker.join(5)
            assert not worker.is_alive(), "a round with nothing to change waited for the write lock"
            assert done and done[0].ran and (done[0].silent, done[0].stale) == (0, 0)
        finally:
            other.execute("ROLLBACK")
            other.close()
        # and a round that has something to change still changes it, under the lock
        later = now() + timedelta(days=30)
        assert run_once(centre.engine, centre.policy, 180, later, alerting=alerting).silent == 1
    finally:
        centre.stop()


def test_a_centre_that_has_just_started_marks_no_node_silent_or_stale(
    client: TestClient, centre: Centre, node: Node
) -> None:
    """While the centre was down no heartbeat or report could arrive: for the silent threshold after
    it starts, nobody is paged for silence or stale evidence; after that, as always."""
    node.send(node.report(evidence_record("ports", {"sockets": []})))
    assert node.heartbeat().status_code == 200
    with write_tx(centre.engine) as conn:  # as after a 30-minute outage of the centre
        conn.execute(update(agents).values(last_heartbeat_at=now() - timedelta(minutes=30)))
        conn.execute(update(latest_evidence).values(collected_at=now() - timedelta(minutes=30)))
    centre.up_since = time.monotonic()
    done = centre.run_duties()
    assert done.ran and (done.silent, done.stale) == (0, 0)
    assert silent_flags(centre) == [False]
    centre.up_since = time.monotonic() - centre.config.silent_threshold_s
    done = centre.run_duties()
    assert (done.silent, done.stale) == (1, 3)
    assert silent_flags(centre) == [True]


def test_the_centres_own_measures_are_judged_a_sixth_of_the_fleet_per_round(
    client: TestClient, centre: Centre, node: Node
) -> None:
    """Judging them reads the nodes' findings and incidents: in a large fleet a burst the requests
    wait for.  So each round judges a sixth of the fleet, and every node is judged once every
    judge_every_s (60 s), not on every round."""
    others = [Node(client, hostname=f"web{i}") for i in range(11)]
    for other in others:
        other.enrol(new_token(centre))
    ids = sorted([node.agent_id, *(o.agent_id for o in others)])
    own = select(findings.c.agent_id).where(findings.c.rule_id.like("centre-%")).distinct()

    def judged() -> List[str]:
        with centre.engine.connect() as conn:
            return sorted(conn.execute(own).scalars())

    assert centre.config.measures.judge_every(centre.config.duty_interval_s) == 60
    assert centre.run_duties().ran
    assert judged() == [i for i in ids if in_share(i, (0, 6))]  # the first round: the first sixth
    assert centre.run_duties().ran and judged() == [i for i in ids if in_share(i, (0, 6))]  # not again within 10 s
    for which in range(1, 6):
        centre.measures_judged_at -= 10
        assert centre.run_duties().ran
        assert judged() == [i for i in ids if any(in_share(i, (s, 6)) for s in range(which + 1))]
    assert judged() == ids  # within 60 s, every node
    with write_tx(centre.engine) as conn:
        conn.execute(findings.delete().where(findings.c.rule_id.like("centre-%")))
    centre.measures_judged_at -= 10
    assert centre.run_duties().ran
    assert judged() == [i for i in ids if in_share(i, (0, 6))]  # and round again


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"rules:\n  - id: caf\xe9\n", ": not UTF-8 text (byte 18: invalid continuation byte)"),
        (b"rules: " + b"[" * 100000, ": not a policy: nested too deeply"),
    ],
)
def test_a_policy_file_that_is_not_utf8_or_nests_too_deeply_is_refused_and_said(
    own_centre: Centre, policy_file: Path, content: bytes, message: str
) -> None:
    centre = own_centre
    rules = len(centre.policy.policy.rules)
    policy_file.write_bytes(content)
    for _ in range(2):  # said at once, and still said by the next round (which does not read it again)
        result = run_once(centre.engine, centre.policy, 10**6, now())
        assert (result.ran, result.policy_reloaded) == (True, False)
        assert centre.policy.last_error == str(policy_file) + message
    assert len(centre.policy.policy.rules) == rules  # the running policy stays in force
    done = subprocess.run(
        [sys.executable, "-m", "central.cli", "policy", "check", str(policy_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"tillsyn-central: {policy_file}{message}"


def test_a_woken_round_another_replica_held_is_tried_again_within_seconds() -> None:
    """A verdict of this process woke the duties while another replica held the round (``ran`` false):
    that round may have read before the verdict was committed, so the page would wait for the
    interval.  The round is tried again a second later, until it runs."""
    from central.runtime.duties import DutyThread

    calls: List[float] = []
    ran = threading.Event()

    def job() -> DutyResult:
        calls.append(time.monotonic())
        if len(calls) < 3:
            return DutyResult(False)  # the other replica holds the duty lock
        ran.set()
        return DutyResult(True)

    thread = DutyThread(60.0, job)
    thread.start()
    try:
        thread.wake()
        assert ran.wait(15), f"{len(calls)} round(s) in 15 s: not tried again before the 60 s interval"
    finally:
        thread.stop()
        thread.join(5)
    assert len(calls) == 3
