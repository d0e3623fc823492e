"""Background duties: mark silent nodes and stale findings, pick up a changed policy.

Safe to run in every centre process at once: each update is guarded on the old
state, and on PostgreSQL one process per round takes an advisory lock and the
others skip the round.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, TypeVar

from sqlalchemy import Connection, Engine, and_, event, func, select, update

from central.alerting.incidents import Round, run_round
from central.alerting.settings import Alerting
from central.clock import utcnow
from central.config import Retention
from central.db.engine import read_tx, try_advisory_lock, write_tx
from central.db.schema import agents
from central.judging.findings import mark_stale, reevaluate
from central.judging.own import judge as own
from central.judging.own.settings import Measures
from central.judging.policy_store import PolicyHolder
from central.retention.sweep import run as prune
from central.runtime.background import Background

log = logging.getLogger("tillsyn.central.duties")
_PG_DUTY_LOCK = 0x7117_D077


@dataclass
class DutyResult:
    ran: bool
    silent: int = 0
    stale: int = 0
    policy_reloaded: bool = False
    notified: int = 0
    """Notifications queued for the outbox this round."""


def mark_silent(conn: Connection, threshold_s: int, now: datetime) -> int:
    """Nodes with no heartbeat for ``threshold_s`` (counted from enrolment before the first).

    The heartbeat alone is the liveness signal: reports carry the node's collection time,
    which a wrong clock or a spool replaying old reports would make meaningless here.
    Read first, written only when some node went silent (a round that finds nothing writes nothing).
    """
    cutoff = now - timedelta(seconds=threshold_s)
    last_seen = func.coalesce(agents.c.last_heartbeat_at, agents.c.enrolled_at)
    going = and_(agents.c.revoked_at.is_(None), agents.c.silent.is_(False), last_seen < cutoff)
    ids = [r.id for r in conn.execute(select(agents.c.id).where(going))]
    if not ids:
        return 0
    if conn.dialect.name == "postgresql":
        # in ingest's order and with its lock; a node whose heartbeat is being written is skipped (it
        # is not silent, and the next round looks again): no wait, and no cycle with a write batch
        locked = select(agents.c.id).where(agents.c.id.in_(ids), going).order_by(agents.c.id)
        ids = list(conn.execute(locked.with_for_update(key_share=True, skip_locked=True)).scalars())
        if not ids:
            return 0
    result = conn.execute(update(agents).where(agents.c.id.in_(ids), going).values(silent=True, silent_since=now))
    return int(result.rowcount or 0)


_ROW_LOCK = re.compile(r"\bFOR (?:NO KEY )?UPDATE\b")


class _WouldWrite(Exception):
    """Raised in a dry run at the round's first write: the round must run under the write lock."""


@contextmanager
def _read_only(conn: Connection) -> Iterator[None]:
    def refuse_writes(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # a row lock counts as a write: rows a dry run locked would be skipped by a real round
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE") or _ROW_LOCK.search(statement):
            raise _WouldWrite(statement[:60])

    event.listen(conn, "before_cursor_execute", refuse_writes)
    try:
        yield
    finally:
        event.remove(conn, "before_cursor_execute", refuse_writes)


_T = TypeVar("_T")


def _pass(engine: Engine, step: Callable[[Connection], _T], dry: bool = True) -> Optional[_T]:
    """Run one part of a duty round; None when another replica holds the duty lock.

    Most rounds find nothing to change: a part first runs reading only, without the write lock (on
    SQLite the lock would hold every report and heartbeat up for the part's length), and only a
    part that has something to write runs again under it (``dry`` false: straight under it)."""
    if dry:
        with read_tx(engine) as conn, _read_only(conn):
            try:
                return step(conn)
            except _WouldWrite:
                pass
    with write_tx(engine) as conn:
        if not try_advisory_lock(conn, _PG_DUTY_LOCK):
            return None
        return step(conn)


def run_once(  # noqa: PLR0913  what one round is given, each optional but the engine
    engine: Engine,
    holder: PolicyHolder,
    silent_after_s: int,
    now: Optional[datetime] = None,
    alerting: Optional[Alerting] = None,
    retention: Optional[Retention] = None,
    absence: bool = True,
    measures: Optional[Measures] = None,
    reports_days: int = Retention().reports_days,
    measures_share: own.Share = (0, 1),
) -> DutyResult:
    """One round: silent nodes, stale findings, a changed policy, then incidents and retention (when given).

    ``absence`` false (a centre that has just started): no node is marked silent or stale yet.
    Heartbeats and reports could not arrive while the centre was down; a short outage must not
    page the whole fleet as silent, and the nodes deliver what they spooled meanwhile."""
    now = now or utcnow()
    holder.reload_if_changed()
    # judged again until a round commits it: a round that fails or finds the lock taken leaves it due
    reloaded, generation, policy = holder.judging_due, holder.generation, holder.policy

    def absences(conn: Connection) -> Tuple[int, int]:
        silent = mark_silent(conn, silent_after_s, now) if absence else 0
        stale = mark_stale(conn, policy, now) if absence else 0
        if reloaded:
            query = select(agents).where(agents.c.revoked_at.is_(None)).order_by(agents.c.id)  # ingest's order
            for agent in conn.execute(query).mappings().all():
                reevaluate(conn, policy, agent, now)
        return silent, stale

    # Each part of the round is a pass of its own: what one part writes does not make the others
    # run again under the write lock, and each commits before the next reads (the incident round
    # sees the own measures' verdicts of this round).
    marked = _pass(engine, absences, dry=not reloaded)
    if marked is None:
        return DutyResult(False, policy_reloaded=reloaded)
    silent, stale = marked
    if measures is not None:
        channels = len(alerting.channels) if alerting is not None else 0
        if _pass(engine, lambda conn: own.run(conn, measures, channels, now, reports_days, measures_share)) is None:
            return DutyResult(False, silent, stale, reloaded)
    incidents: Optional[Round] = None
    if alerting is not None:
        incidents = _pass(engine, lambda conn: run_round(conn, alerting, now, policy))
        if incidents is None:
            return DutyResult(False, silent, stale, reloaded)
    if retention is not None and _pass(engine, lambda conn: prune(conn, retention, now), dry=False) is None:
        return DutyResult(False, silent, stale, reloaded)
    if reloaded:
        holder.judged(generation)
    if incidents is not None and (incidents.opened or incidents.resolved):
        log.info(
            "incidents: %d opened, %d resolved, %d notification(s) queued, %d held",
            incidents.opened,
            incidents.resolved,
            incidents.notified,
            incidents.held,
        )
    if silent or stale:
        log.info("duties: %d node(s) went silent, %d finding(s) went stale", silent, stale)
    return DutyResult(True, silent, stale, reloaded, incidents.notified if incidents is not None else 0)


class DutyThread(Background):
    """Runs :func:`run_once` every ``interval`` seconds until stopped; woken when a verdict changed
    (on-call should not wait for the interval)."""

    def __init__(self, interval: float, job: Callable[[], DutyResult]) -> None:
        super().__init__("tillsyn-duties", interval)
        self.job = job
        self.last: Dict[str, object] = {}

    MIN_GAP_S = 1.0
    """Wake-ups arriving in a burst (many nodes turning failing at once) cost one round a second."""

    def run(self) -> None:
        last = 0.0
        retry_until: Optional[float] = None
        while not self.stopping.is_set():
            woken = self.woken.wait(self.interval)
            self.stopping.wait(max(0.0, last + self.MIN_GAP_S - time.monotonic()))
            self.woken.clear()
            if self.stopping.is_set():
                break
            last = time.monotonic()
            try:
                result = self.job()
                self.last = {"at": utcnow().isoformat(), "silent": result.silent, "stale": result.stale}
            except Exception:
                log.exception("background duty failed; retrying next round")
                retry_until = None
                continue
            # Woken by a verdict of this process while another replica held the round: its round may
            # have read before that verdict was committed, so try again in a second rather than at the
            # end of the interval (a deviation's page waited up to the interval), for one interval at most.
            if result.ran:
                retry_until = None
            elif woken:
                retry_until = last + self.interval if retry_until is None else retry_until
                if last < retry_until:
                    self.woken.set()
                else:  # given up for this wake-up; the next one tries again
                    retry_until = None
