"""Group commit (central/ingest/group_commit.py) and the heartbeats stored together, on SQLite and PostgreSQL.

The writer is held inside a first unit while the others are queued, so they are
known to share one transaction: a refusal there must change nothing of its own and
nothing of the others', and a unit the database fails must not fail the rest.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event, select, text

from central.config import Limits
from central.db.engine import write_tx
from central.db.schema import agents, finding_changes
from central.ingest.group_commit import GroupWriter
from central.ingest.receive import CheckedBeat, prepare_heartbeat, store_heartbeats
from central.request_refused import RequestRefused, refuse
from central.runtime.service import Centre, open_centre
from evidence.wire import Heartbeat, canonical
from tests.central.conftest import Node, count_hand_overs, make_config, new_token


@pytest.fixture
def probe(centre: Centre) -> Engine:
    """A scratch table beside the centre's own, in the same database."""
    with centre.engine.begin() as conn:
        conn.execute(text("CREATE TABLE writer_probe (k VARCHAR(20) PRIMARY KEY, v INTEGER NOT NULL)"))
    return centre.engine


def _insert(key: str, value: int = 1) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(text("INSERT INTO writer_probe (k, v) VALUES (:k, :v)"), {"k": key, "v": value})
        return key

    return work


def _rows(engine: Engine) -> Dict[str, int]:
    with engine.connect() as conn:
        return {row.k: row.v for row in conn.execute(text("SELECT k, v FROM writer_probe"))}


def _held(writer: GroupWriter) -> Tuple[threading.Event, Future[Any]]:
    """Occupy the writer in a transaction until the event is set: what is queued meanwhile is one batch."""
    entered, release = threading.Event(), threading.Event()

    def hold(conn: Connection) -> str:
        entered.set()
        assert release.wait(10)
        return "held"

    future = writer.submit(hold)
    assert entered.wait(10)
    return release, future


@contextmanager
def _transactions(engine: Engine) -> Iterator[List[int]]:
    """Counts the real transactions begun meanwhile (a begin event per root transaction)."""
    begun: List[int] = []

    def count(_conn: Any) -> None:
        begun.append(1)

    event.listen(engine, "begin", count)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", count)


def test_queued_units_commit_in_one_transaction_and_answer_after_it(probe: Engine) -> None:
    writer = GroupWriter(probe)
    try:
        release, held = _held(writer)
        with _transactions(probe) as begun:
            futures = [writer.submit(_insert(f"k{i}")) for i in range(5)]
            assert not any(f.done() for f in futures)  # nothing answered before the commit
            release.set()
            assert [f.result(10) for f in futures] == [f"k{i}" for i in range(5)]
            assert held.result(10) == "held"
        assert len(begun) == 1, "the five units shared one transaction"
        assert _rows(probe) == {f"k{i}": 1 for i in range(5)}
    finally:
        writer.stop()


def test_a_refused_unit_changes_nothing_and_the_others_commit(probe: Engine) -> None:
    def writes_then_refuses(conn: Connection) -> None:
        _insert("refused")(conn)
        raise refuse(409, "replay", "refused after writing")

    writer = GroupWriter(probe)
    try:
        release, _ = _held(writer)
        before = writer.submit(_insert("before"))
        refused = writer.submit(writes_then_refuses, savepoint=True)
        after = writer.submit(_insert("after"))
        release.set()
        assert before.result(10) == "before" and after.result(10) == "after"
        with pytest.raises(RequestRefused) as caught:
            refused.result(10)
        assert caught.value.reason == "replay"
        assert _rows(probe) == {"before": 1, "after": 1}
    finally:
        writer.stop()


def test_a_unit_the_database_fails_does_not_fail_the_others(probe: Engine) -> None:
    with probe.begin() as conn:
        conn.execute(text("INSERT INTO writer_probe (k, v) VALUES ('taken', 0)"))
    writer = GroupWriter(probe)
    try:
        release, _ = _held(writer)
        first = writer.submit(_insert("a"))
        clash = writer.submit(_insert("taken"))  # primary key taken: the database refuses the batch
        last = writer.submit(_insert("b"))
        release.set()
        assert first.result(10) == "a" and last.result(10) == "b"
        with pytest.raises(Exception) as caught:
            clash.result(10)
        assert "IntegrityError" in type(caught.value).__name__
        assert _rows(probe) == {"taken": 0, "a": 1, "b": 1}
    finally:
        writer.stop()


def test_stop_finishes_what_is_queued(probe: Engine) -> None:
    writer = GroupWriter(probe)
    release, _ = _held(writer)
    futures = [writer.submit(_insert(f"q{i}")) for i in range(3)]
    stopper = threading.Thread(target=writer.stop)
    stopper.start()
    release.set()
    stopper.join(15)
    assert [f.result(0) for f in futures] == ["q0", "q1", "q2"]
    assert set(_rows(probe)) == {"q0", "q1", "q2"}


def test_a_unit_abandoned_before_it_ran_is_not_run_and_the_writer_goes_on(probe: Engine) -> None:
    writer = GroupWriter(probe)
    try:
        release, _ = _held(writer)
        abandoned = writer.submit(_insert("abandoned"))
        kept = writer.submit(_insert("kept"))
        assert abandoned.cancel()
        release.set()
        assert kept.result(10) == "kept"
        assert writer.submit(_insert("later")).result(10) == "later"
        assert _rows(probe) == {"kept": 1, "later": 1}
    finally:
        writer.stop()


def test_nothing_can_be_queued_once_stopped(probe: Engine) -> None:
    writer = GroupWriter(probe)
    writer.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        writer.submit(_insert("late"))
    assert _rows(probe) == {}


def test_a_together_call_that_answers_wrongly_writes_nothing(probe: Engine) -> None:
    """The answers are matched to the units before the commit: a wrong count rolls the batch back."""

    def short(conn: Connection, items: List[Any]) -> List[Any]:
        for item in items:
            _insert(item)(conn)
        return items[1:]

    writer = GroupWriter(probe)
    try:
        release, _ = _held(writer)
        plain = writer.submit(_insert("plain"))
        grouped = [writer.submit_together(short, f"g{i}") for i in range(2)]
        release.set()
        assert plain.result(10) == "plain"  # run again alone, it commits
        for future in grouped:
            with pytest.raises(RuntimeError, match="answers for"):
                future.result(10)
        assert _rows(probe) == {"plain": 1}
    finally:
        writer.stop()


def _beat(node: Node, seq: int) -> CheckedBeat:
    beat = Heartbeat(node.agent_id, seq, datetime.now(timezone.utc), spool_depth=seq)
    prepared = prepare_heartbeat(canonical(beat.to_dict()), node.agent_id, Limits(), datetime.now(timezone.utc))
    return CheckedBeat(prepared, node.public_key)


def test_heartbeats_stored_together_are_judged_one_by_one(centre: Centre, node: Node) -> None:
    """A batch with a replay, an unknown agent and a key that is not the node's: each refused alone,
    in order, and the heartbeats around them recorded."""
    stranger = CheckedBeat(Heartbeat("a" * 32, 1, datetime.now(timezone.utc), 0), node.public_key)
    forged = CheckedBeat(_beat(node, 9).beat, "ed25519-not-the-key")
    beats = [_beat(node, 5), _beat(node, 4), stranger, forged, _beat(node, 6)]
    now = datetime.now(timezone.utc)
    with centre.engine.begin() as conn:
        answers = store_heartbeats(conn, beats, now)
    reasons = [a.reason if isinstance(a, RequestRefused) else a["seq"] for a in answers]
    assert reasons == [5, "replay", "unknown_agent", "bad_signature", 6]
    with centre.engine.connect() as conn:
        row = conn.execute(select(agents).where(agents.c.id == node.agent_id)).mappings().one()
    assert row["last_heartbeat_seq"] == 6
    assert row["health"]["spool_depth"] == 6
    assert abs(row["last_heartbeat_at"] - now) < timedelta(seconds=1)


def test_a_heartbeat_is_answered_only_once_committed(centre: Centre, node: Node) -> None:
    """Through the API: a heartbeat waits for the writer's transaction, then is answered and recorded."""
    writer = centre.group_writer()  # the one the API uses
    release, _ = _held(writer)
    answer: List[Any] = []
    sender = threading.Thread(target=lambda: answer.append(node.heartbeat(seq=7)))
    sender.start()
    sender.join(0.5)
    assert sender.is_alive() and not answer, "answered before the transaction committed"
    release.set()
    sender.join(15)
    assert answer[0].status_code == 200, answer[0].text
    assert answer[0].json() == {"ok": True, "seq": 7}
    with centre.engine.connect() as conn:
        seq = conn.execute(select(agents.c.last_heartbeat_seq).where(agents.c.id == node.agent_id)).scalar_one()
    assert seq == 7


def test_requests_on_the_event_loop_are_answered_after_the_commit_in_one_call(probe: Engine) -> None:
    """Awaited units: the results of a batch reach the loop together, once committed."""
    writer = GroupWriter(probe)

    async def scenario() -> Tuple[List[str], int]:
        calls = count_hand_overs(asyncio.get_running_loop())
        release, held = _held(writer)
        tasks = [asyncio.ensure_future(writer.run(_insert(f"a{i}"))) for i in range(4)]
        tasks.append(asyncio.ensure_future(writer.run_together(_together_insert, "t0")))
        await asyncio.sleep(0.2)
        assert not any(t.done() for t in tasks), "answered before the commit"
        assert _rows(probe) == {}
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert held.result(10) == "held"
        return results, len(calls)

    try:
        results, calls = asyncio.run(scenario())
        assert results == ["a0", "a1", "a2", "a3", "t0"]
        assert calls == 1, "one hand-over to the loop for the whole batch"
        assert set(_rows(probe)) == {"a0", "a1", "a2", "a3", "t0"}
    finally:
        writer.stop()


def _together_insert(conn: Connection, items: List[Any]) -> List[Any]:
    for item in items:
        _insert(item)(conn)
    return items


def test_an_awaited_unit_abandoned_before_it_ran_is_not_run_and_refusals_reach_the_loop(probe: Engine) -> None:
    writer = GroupWriter(probe)

    def refuses(conn: Connection) -> None:
        raise refuse(409, "replay", "refused")

    async def scenario() -> None:
        release, _ = _held(writer)
        abandoned = asyncio.ensure_future(writer.run(_insert("abandoned")))
        refused = asyncio.ensure_future(writer.run(refuses))
        kept = asyncio.ensure_future(writer.run(_insert("kept")))
        await asyncio.sleep(0.05)
        abandoned.cancel()
        await asyncio.sleep(0.05)
        release.set()
        assert await asyncio.wait_for(kept, 10) == "kept"
        with pytest.raises(RequestRefused):
            await asyncio.wait_for(refused, 10)
        assert abandoned.cancelled()

    try:
        asyncio.run(scenario())
        assert _rows(probe) == {"kept": 1}
    finally:
        writer.stop()


def _lock_then(agent_id: str, met: threading.Barrier) -> Callable[[Connection], str]:
    """Lock an agent's row as ingest does, then wait (at most a while) for the other replica to lock its own."""

    def work(conn: Connection) -> str:
        conn.execute(select(agents.c.id).where(agents.c.id == agent_id).with_for_update()).all()
        # broken when the other replica waits for this one's rows, as it should
        with suppress(threading.BrokenBarrierError):
            met.wait()
        return agent_id

    return work


def _lock(agent_id: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(select(agents.c.id).where(agents.c.id == agent_id).with_for_update()).all()
        return agent_id

    return work


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite locks the whole database
def test_two_replicas_taking_the_same_agents_in_opposite_orders_do_not_deadlock(
    tmp_path: Path, database_url: str, centre: Centre, client: TestClient, node: Node, caplog: Any
) -> None:
    """Two centre processes on one PostgreSQL: one batch locks agents A then B, the other B then A.
    Each writer first locks all its batch's agents in one order, so the second waits for the first to
    commit; without that PostgreSQL breaks the deadlock after a second by failing one transaction."""
    other = Node(client, hostname="web2.example.net")
    other.enrol(new_token(centre))
    replica = open_centre(make_config(tmp_path / "replica", database_url))
    first, second = centre.group_writer(), replica.group_writer()
    met = threading.Barrier(2, timeout=2)
    a, b = sorted([node.agent_id, other.agent_id])
    try:
        releases = []
        for writer in (first, second):
            release, _ = _held(writer)
            releases.append(release)
        with caplog.at_level(logging.WARNING, logger="tillsyn.central.writer"):
            ab = [first.submit(_lock_then(a, met), locks=(a,)), first.submit(_lock(b), locks=(b,))]
            ba = [second.submit(_lock_then(b, met), locks=(b,)), second.submit(_lock(a), locks=(a,))]
            for release in releases:
                release.set()
            assert [f.result(15) for f in ab] == [a, b]
            assert [f.result(15) for f in ba] == [b, a]
        failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert not failed, failed  # no transaction was broken by a deadlock and run again unit by unit
    finally:
        replica.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite locks the whole database
def test_reports_and_heartbeats_name_their_agent_so_the_batch_locks_it_first(centre: Centre, node: Node) -> None:
    """Through the API each request's transaction begins by locking its agent's row in id order; the
    first request's look-up of the node's key (before the write) locks nothing."""
    statements: List[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(centre.engine, "before_cursor_execute", seen)
    try:
        for send in (node.heartbeat, lambda: node.send(node.report())):
            statements.clear()
            assert send().status_code == 200
            locks = [s for s in statements if "FOR NO KEY UPDATE" in s or "FOR UPDATE" in s]
            assert locks and "ORDER BY agents.id FOR NO KEY UPDATE" in locks[0], statements
    finally:
        event.remove(centre.engine, "before_cursor_execute", seen)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite locks the whole database
def test_a_batch_does_not_wait_for_a_transaction_that_only_refers_to_its_agents(
    centre: Centre, client: TestClient, node: Node
) -> None:
    """The evaluator, the duties and retention insert rows that refer to agents (findings, their changes,
    incidents), each taking a KEY SHARE lock on its agent, in their own order and sometimes for
    seconds. The writer locks the agents it writes FOR NO KEY UPDATE, which does not wait for that:
    with FOR UPDATE it waited, and deadlocked with such a transaction taking its agents in another order."""
    other = Node(client, hostname="web2.example.net")
    other.enrol(new_token(centre))
    first, last = sorted([node, other], key=lambda n: n.agent_id)
    writer = centre.group_writer()

    def change(conn: Connection, agent_id: str) -> None:
        conn.execute(
            finding_changes.insert(),
            {"agent_id": agent_id, "rule_id": "r", "to_status": "failing", "at": datetime.now(timezone.utc)},
        )

    def together(conn: Connection, items: List[Any]) -> List[Any]:
        return store_heartbeats(conn, items, datetime.now(timezone.utc))

    with write_tx(centre.engine) as conn:
        change(conn, last.agent_id)  # the other transaction's order: the last agent first
        beats = [writer.submit_together(together, _beat(n, 1), locks=(n.agent_id,)) for n in (first, last)]
        assert [f.result(5) for f in beats] == [{"ok": True, "seq": 1}] * 2  # answered while it is open
        change(conn, first.agent_id)


def _nodes(client: TestClient, centre: Centre, count: int) -> List[Node]:
    token = new_token(centre)
    nodes = [Node(client) for _ in range(count)]
    for n in nodes:
        n.enrol(token)
    return nodes


def _heartbeat_rows(centre: Centre, nodes: List[Node]) -> List[Tuple[Any, ...]]:
    columns = (
        agents.c.last_heartbeat_seq,
        agents.c.last_heartbeat_at,
        agents.c.health,
        agents.c.silent,
        agents.c.silent_since,
    )
    with centre.engine.connect() as conn:
        rows = {r[0]: tuple(r[1:]) for r in conn.execute(select(agents.c.id, *columns))}
    return [rows[n.agent_id] for n in nodes]


def test_heartbeats_of_distinct_nodes_each_checked(client: TestClient, centre: Centre) -> None:
    """Every node once in the batch (on PostgreSQL one statement writes those that pass): a replay, a
    stranger, a key not the node's and a revoked node are each refused with its reason, in its place,
    and write nothing; the others are recorded, and a silent node is silent no more."""
    ok, replayed, forged, revoked, silent = _nodes(client, centre, 5)
    now = datetime.now(timezone.utc)
    with centre.engine.begin() as conn:
        store_heartbeats(conn, [_beat(replayed, 5)], now)
        conn.execute(agents.update().where(agents.c.id == revoked.agent_id).values(revoked_at=now))
        conn.execute(agents.update().where(agents.c.id == silent.agent_id).values(silent=True, silent_since=now))
    before = _heartbeat_rows(centre, [replayed, forged, revoked])
    stranger = CheckedBeat(Heartbeat("b" * 32, 1, now, 0), ok.public_key)
    errors = ("clamd: ingen signaturdatabas — «main.cvd» saknas", 'quote " and \\ backslash')
    beats = [
        CheckedBeat(replace(_beat(ok, 3).beat, last_errors=errors), ok.public_key),
        _beat(replayed, 5),
        stranger,
        CheckedBeat(_beat(forged, 2).beat, ok.public_key),
        _beat(revoked, 4),
        _beat(silent, 7),
    ]
    later = now + timedelta(seconds=30)
    with write_tx(centre.engine) as conn:
        answers = store_heartbeats(conn, beats, later)
    reasons = [a.reason if isinstance(a, RequestRefused) else a for a in answers]
    assert reasons == [
        {"ok": True, "seq": 3},
        "replay",
        "unknown_agent",
        "bad_signature",
        "revoked",
        {"ok": True, "seq": 7},
    ]
    assert _heartbeat_rows(centre, [replayed, forged, revoked]) == before
    health = {"spool_depth": 3, "last_errors": list(errors)}
    assert _heartbeat_rows(centre, [ok]) == [(3, later, health, False, None)]
    assert _heartbeat_rows(centre, [silent]) == [(7, later, {"spool_depth": 7, "last_errors": []}, False, None)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_batch_that_passes_is_written_by_one_statement(client: TestClient, centre: Centre) -> None:
    nodes = _nodes(client, centre, 3)
    statements: List[str] = []
    with write_tx(centre.engine) as conn:
        event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
        answers = store_heartbeats(conn, [_beat(n, 1) for n in nodes], datetime.now(timezone.utc))
    assert answers == [{"ok": True, "seq": 1}] * 3
    assert len(statements) == 1 and statements[0].lstrip().startswith("UPDATE agents"), statements
    assert [row[0] for row in _heartbeat_rows(centre, nodes)] == [1, 1, 1]
