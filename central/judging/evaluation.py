"""Evaluating stored reports against the policy, in batches, after ingest has acknowledged them.

Ingest verifies, chains and stores a report and queues it in ``pending_evaluation`` in
the same transaction, then answers the agent; nothing here can lose a report.  The
evaluator takes the queue in order, a batch per transaction: it stores each node's
latest evidence, judges the rules against it (as of the moment the report was
received, so a backlog judges exactly as ingest would have) and deletes the queue
entries.  A centre killed between the two picks the queue up again when it starts.

One evaluator works at a time: on SQLite the write lock orders everything; on
PostgreSQL the batch takes an advisory lock and another process's evaluator skips
the round, so a node's reports are always judged in the order they were stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, PendingRollbackError, SQLAlchemyError

from central.db import report_bodies
from central.db.engine import try_advisory_lock, write_tx
from central.db.schema import agents, findings, latest_evidence, pending_evaluation, reports
from central.erasure.erase import hold_nodes
from central.ingest.parsed_cache import ParsedReports
from central.judging.findings import COMPARED, Changes, record, rules_for_agent, shown
from central.runtime.background import Background
from evidence.policy import Policy
from evidence.rules import Verdict, evaluate
from evidence.wire import Report, WireError, parse_report

log = logging.getLogger("tillsyn.central.evaluation")
_PG_EVALUATOR_LOCK = 0x7117_E7A1
BATCH = 8
"""Reports per transaction: enough to share the statements, short enough (about 10 ms) that
ingest on SQLite never waits long for the write lock."""
YIELD_S = 0.002
"""Between two batches the evaluator steps aside, so requests waiting for the write lock get it
(a thread releasing a lock and taking it again at once would otherwise keep it)."""
BUSY_RETRY_S = 0.05
LINGER_S = 0.1
"""After a wake-up, wait this long so a burst of reports is judged in a few batches, not one by one."""


@dataclass
class Evaluated:
    reports: int = 0
    turned_failing: bool = False
    """Some verdict became failing: the incident duty should run now."""
    unreadable: int = 0
    failed: int = 0
    """Reports the database refused to judge (logged, and left unjudged)."""
    busy: bool = False
    """Another process holds the evaluation (PostgreSQL): try again shortly, the queue may not be empty."""


def backlog(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(pending_evaluation)).scalar_one())


def _store_latest(conn: Connection, rows: List[Dict[str, Any]]) -> None:
    """The newest record per node and collector, one upsert for the whole batch."""
    if rows:
        conn.execute(_UPSERT_LATEST[conn.dialect.name], rows)


def _upsert_latest(insert: Any) -> Any:
    statement = insert(latest_evidence)
    return statement.on_conflict_do_update(
        index_elements=[latest_evidence.c.agent_id, latest_evidence.c.collector],
        set_={k: statement.excluded[k] for k in ("report_id", "collected_at", "status", "record")},
    )


_UPSERT_LATEST = {"sqlite": _upsert_latest(sqlite_insert), "postgresql": _upsert_latest(pg_insert)}
"""Built once per database: building the upsert costs more than a batch's worth of running it."""


class _Judged(NamedTuple):
    """A queued report to judge: its row, the report, and each record as a dict by collector
    (built once: the latest evidence stores it and the rules read it)."""

    row: Any
    report: Report
    records: Dict[str, Dict[str, Any]]


def _read_body(conn: Connection, bodies: report_bodies.Bodies, row: Any) -> bytes:
    """A queued report's bytes.  An erasure that committed after the queue was read has rewritten
    the body and deleted the pieces the row read before refers to (PostgreSQL reads each statement
    anew): the body is read again once, as it is now."""
    try:
        return bodies.raw(row.agent_id, row.body)
    except report_bodies.UnreadableBody:
        now = conn.execute(select(reports.c.body).where(reports.c.id == row.report_pk)).scalar()
        if now is None or bytes(now) == bytes(row.body):
            raise
        return report_bodies.Bodies(conn).raw(row.agent_id, now)


def _judged(row: Any, report: Report) -> _Judged:
    return _Judged(row, report, {e.collector: e.to_dict() for e in report.evidence})


def _latest_rows(parsed: List[_Judged]) -> List[Dict[str, Any]]:
    newest: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for row, report, records in parsed:
        for evidence in report.evidence:
            newest[(row.agent_id, evidence.collector)] = {
                "agent_id": row.agent_id,
                "collector": evidence.collector,
                "report_id": report.report_id,
                "collected_at": evidence.collected_at,
                "status": evidence.status.value,
                "record": records[evidence.collector],
            }
    return list(newest.values())


def _judge(conn: Connection, policy: Policy, parsed: List[_Judged], done: Evaluated) -> None:
    """Each report's verdicts, in order; one read of the batch's findings, writes only for changes."""
    agent_ids = sorted({one.row.agent_id for one in parsed})
    nodes = {a["id"]: a for a in conn.execute(select(agents).where(agents.c.id.in_(agent_ids))).mappings()}
    current: Dict[Tuple[str, str], Any] = {
        (row.agent_id, row.rule_id): row
        for row in conn.execute(
            select(findings.c.agent_id, findings.c.rule_id, *COMPARED).where(findings.c.agent_id.in_(agent_ids))
        )
    }
    changes = Changes()
    for row, report, records in parsed:
        agent = nodes.get(row.agent_id)
        if agent is None or agent["revoked_at"] is not None:
            continue
        for rule in rules_for_agent(policy, agent):
            if rule.collector not in records:
                continue
            result = evaluate(rule, records[rule.collector], row.received_at)
            key = (row.agent_id, rule.id)
            old = current.get(key)
            changed = record(conn, row.agent_id, result, row.received_at, report.report_id, old, changes)
            status = result.verdict.value
            if changed and result.verdict is Verdict.FAILING:
                done.turned_failing = True
            if old is not None and old.status != status and not changed:
                # another process changed the finding first (the write is guarded): read it again
                current[key] = conn.execute(
                    select(*COMPARED).where(findings.c.agent_id == row.agent_id, findings.c.rule_id == rule.id)
                ).first()
            else:
                current[key] = shown(result)  # as this batch left it
    changes.write(conn)


def evaluate_batch(
    engine: Engine, policy: Policy, limit: int = BATCH, parsed: Optional[ParsedReports] = None
) -> Evaluated:
    """Evaluate up to ``limit`` queued reports in one transaction, oldest first (a report ingest
    parsed in this process is taken from ``parsed``; the others are parsed from their stored body).

    A report the database refuses to judge (it should not happen: ingest refuses what one of the
    databases cannot store) is judged alone, and if it fails alone it is logged, counted and taken
    off the queue, so one report can never stop the evaluation of every other node's reports.
    """
    done = Evaluated()
    with write_tx(engine) as conn:
        if not try_advisory_lock(conn, _PG_EVALUATOR_LOCK):
            done.busy = True
            return done
        # an erasure of one of these nodes ends before this batch reads their reports (PostgreSQL; on
        # SQLite this transaction has the database to itself), and waits for it to commit
        queued = dict(
            conn.execute(
                select(pending_evaluation.c.report_pk, pending_evaluation.c.agent_id)
                .order_by(pending_evaluation.c.report_pk)
                .limit(limit)
            ).all()
        )
        if not queued:
            return done
        hold_nodes(conn, queued.values(), shared=True)
        rows = conn.execute(
            select(
                pending_evaluation.c.report_pk,
                reports.c.agent_id,
                reports.c.received_at,
                reports.c.body_sha256,
                reports.c.erased_sha256,
                reports.c.body,
            )
            .join(reports, reports.c.id == pending_evaluation.c.report_pk)
            .where(pending_evaluation.c.report_pk.in_(list(queued)))
            .order_by(pending_evaluation.c.report_pk)
        ).all()
        if not rows:
            return done
        judged: List[_Judged] = []
        bodies = report_bodies.Bodies(conn)
        for row in rows:
            kept = parsed.take(row.report_pk, row.body_sha256) if parsed is not None else None
            if kept is not None and row.erased_sha256 is None:  # ingest's parse is of the body before an erasure
                judged.append(_judged(row, kept))
                continue
            try:
                judged.append(_judged(row, parse_report(_read_body(conn, bodies, row))))
            except (
                WireError,
                OverflowError,
                report_bodies.UnreadableBody,
            ) as err:  # ingest parsed it; only a changed store gets here
                log.error("stored report %s of agent %s cannot be read again: %s", row.report_pk, row.agent_id, err)
                done.unreadable += 1
        try:
            with conn.begin_nested():
                _apply(conn, policy, judged, done)
        except SQLAlchemyError as err:
            if _connection_lost(err):  # not a report's fault: the batch stays queued, retried whole
                raise
            for one in judged:  # one at a time: all but the culprit are judged
                try:
                    with conn.begin_nested():
                        _apply(conn, policy, [one], done)
                except SQLAlchemyError as err:
                    if _connection_lost(err):
                        raise
                    row = one.row
                    log.error(
                        "report %s of agent %s could not be judged and is left unjudged: %s",
                        one.report.report_id,
                        row.agent_id,
                        err,
                    )
                    done.failed += 1
        conn.execute(delete(pending_evaluation).where(pending_evaluation.c.report_pk.in_([r.report_pk for r in rows])))
        done.reports = len(rows)
    return done


def _connection_lost(err: SQLAlchemyError) -> bool:
    """The database went away (a PostgreSQL restart): nothing is wrong with the reports judged."""
    return isinstance(err, PendingRollbackError) or (isinstance(err, DBAPIError) and err.connection_invalidated)


def _apply(conn: Connection, policy: Policy, parsed: List[_Judged], done: Evaluated) -> None:
    _store_latest(conn, _latest_rows(parsed))
    _judge(conn, policy, parsed, done)


def evaluate_pending(
    engine: Engine, policy: Policy, limit: int = BATCH, parsed: Optional[ParsedReports] = None
) -> Evaluated:
    """Evaluate the whole queue, a batch per transaction (tests and start-up; the thread below in service)."""
    total = Evaluated()
    while True:
        done = evaluate_batch(engine, policy, limit, parsed)
        total.reports += done.reports
        total.unreadable += done.unreadable
        total.failed += done.failed
        total.turned_failing = total.turned_failing or done.turned_failing
        if done.reports < limit:
            return total


class EvaluatorThread(Background):
    """Drains the queue whenever ingest has stored reports, and on its own every ``interval`` seconds
    (reports queued by another centre process, or left by a process that was killed)."""

    def __init__(
        self,
        interval: float,
        job: Callable[[], Evaluated],
        on_verdicts_changed: Callable[[], None],
        linger: float = LINGER_S,
    ) -> None:
        super().__init__("tillsyn-evaluator", interval)
        self.linger = linger
        self.job = job
        self.on_verdicts_changed = on_verdicts_changed

    def run(self) -> None:
        while not self.stopping.is_set():
            self.woken.clear()
            try:
                done = self.job()
                if done.turned_failing:
                    self.on_verdicts_changed()
                if done.reports:
                    self.stopping.wait(YIELD_S)
                    continue  # more may be queued
                if done.busy:  # another centre process is judging: look again soon, not in `interval`
                    self.stopping.wait(BUSY_RETRY_S)
                    continue
            except Exception:
                log.exception("evaluating queued reports failed; retrying")
                self.stopping.wait(1.0)
            if self.woken.wait(self.interval):
                self.stopping.wait(self.linger)
