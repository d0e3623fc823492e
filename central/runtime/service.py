"""One centre process: configuration, database, policy, metrics and duties, built explicitly."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from sqlalchemy import Connection, Engine

from central.alerting.channels import ChannelError, Sender, build_sender
from central.alerting.dispatch import Dispatcher, Sent, dispatch_once
from central.alerting.incidents import look_again_at_open_incidents
from central.auth.throttle import LoginThrottle
from central.clock import utcnow
from central.config import CentralConfig
from central.db import migrate
from central.db.checkpoint import WalCheckpointer
from central.db.engine import make_engine, read_tx, write_tx
from central.enrolment import assign_default_tenant
from central.ingest.group_commit import GroupWriter, Together
from central.ingest.parsed_cache import ParsedReports
from central.ingest.receive import lock_agents
from central.ingest.signature_thread import Verifier
from central.judging import read_queries
from central.judging.evaluation import Evaluated, EvaluatorThread, evaluate_batch, evaluate_pending
from central.judging.evaluation import backlog as evaluation_backlog
from central.judging.policy_store import PolicyHolder, policy_path
from central.runtime.duties import DutyResult, DutyThread, run_once
from central.runtime.health import Problem, assess
from central.runtime.metrics import Metrics
from central.runtime.pipeline import Pipeline, PipelineReader

log = logging.getLogger("tillsyn.central")
T = TypeVar("T")


@dataclass
class Centre:
    config: CentralConfig
    engine: Engine
    policy: PolicyHolder
    metrics: Metrics = field(init=False)
    logins: LoginThrottle = field(init=False)
    """Wrong logins counted per address and name, and per address (central/auth/throttle.py)."""
    duties: Optional[DutyThread] = None
    dispatcher: Optional[Dispatcher] = None
    evaluator: Optional[EvaluatorThread] = None
    checkpointer: Optional[WalCheckpointer] = None
    """SQLite only: WAL checkpoints off the requests' path (central/db/checkpoint.py)."""
    senders: Dict[str, Sender] = field(default_factory=dict)
    workers: Optional[ThreadPoolExecutor] = None
    """Threads for the agents' endpoints: a plain executor costs a third of the framework's
    general thread pool per request (measured: 43 against 142 µs of CPU with 8 in flight)."""
    writer: Optional[GroupWriter] = None
    """Group commit of the agents' heartbeats and reports (central/ingest/group_commit.py), started on first use."""
    verifier: Optional[Verifier] = None
    """Checks the agents' signatures beside the event loop (ingest/signature_thread.py), started on first use."""
    agent_keys: Dict[str, str] = field(default_factory=dict)
    """Public key by agent id, to check a signed request before the write lock (an id's key never changes)."""
    parsed: ParsedReports = field(default_factory=ParsedReports)
    """Reports ingest parsed and stored, for the evaluator to take instead of parsing them again."""
    pruned_at: float = -1e9
    """When this process last ran retention (monotonic)."""
    measures_judged_at: float = -1e9
    """When this process last judged a slice of the fleet on the centre's own measures (monotonic)."""
    measures_slice: int = 0
    """Which slice it judges next: each node is judged every ``judge_every``, a slice per duty
    interval, so that no round judges the whole fleet at once (a burst in the requests' latency)."""
    up_since: float = field(default_factory=time.monotonic)
    """When this process started (monotonic): while it was down, heartbeats and reports could not
    arrive, so no node is judged silent or stale for the silent threshold after it."""

    duty_ok_at: float = field(default_factory=time.monotonic)
    """When this process last finished a duty round without error (monotonic; start-up counts)."""
    pipeline_reader: PipelineReader = field(init=False)

    def __post_init__(self) -> None:
        self.pipeline_reader = PipelineReader(
            self.engine, lambda: self.policy.policy, self.config.alerting.channels.keys
        )
        self.metrics = Metrics(self.node_counts, self.backlog, self.pipeline_health)
        self.metrics.channels(self.config.alerting.channels)
        self.logins = LoginThrottle(self.config.sessions)

    def pipeline_health(self) -> Tuple[Optional[Pipeline], List[Problem]]:
        """The pipeline as the database sees it (None when it cannot be read) and what is wrong with it."""
        try:
            pipeline: Optional[Pipeline] = self.pipeline_reader.read()
        except Exception:  # the database being down is /healthz's own answer, not a crash here
            log.warning("cannot read the alerting pipeline from the database", exc_info=True)
            pipeline = None
        since_ok = time.monotonic() - self.duty_ok_at if self.duties is not None else None
        return pipeline, assess(self.config.health, self.config.duty_interval_s, pipeline, since_ok)

    def offload(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """Run blocking database work off the event loop (await the result)."""
        if self.workers is None:
            self.workers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tillsyn-ingest")
        return asyncio.get_running_loop().run_in_executor(self.workers, work)

    async def write(self, work: Callable[[Connection], T], *, savepoint: bool = False, agent: str = "") -> T:
        """Run ``work(conn)`` in the group writer's next transaction (the result is committed);
        ``agent``: the agent whose row ``work`` locks."""
        return await self.group_writer().run(work, savepoint=savepoint, locks=(agent,) if agent else ())

    async def write_together(self, together: Together, item: object, *, agent: str = "") -> Any:
        """Run ``together(conn, items)`` once for this item and the others of its kind in the next transaction."""
        return await self.group_writer().run_together(together, item, locks=(agent,) if agent else ())

    def group_writer(self) -> GroupWriter:
        if self.writer is None:
            lock = lock_agents if self.engine.dialect.name == "postgresql" else None
            self.writer = GroupWriter(self.engine, lock_rows=lock)
        return self.writer

    def signatures(self) -> Verifier:
        if self.verifier is None:
            self.verifier = Verifier()
        return self.verifier

    def node_counts(self) -> dict[str, int]:
        with read_tx(self.engine) as conn:
            return read_queries.state_counts(conn)

    def backlog(self) -> int:
        """Reports acknowledged but not yet evaluated."""
        with read_tx(self.engine) as conn:
            return evaluation_backlog(conn)

    def run_duties(self) -> DutyResult:
        started = time.monotonic()
        try:
            result = self._run_duties()
        finally:
            self.metrics.duty_seconds.observe(time.monotonic() - started)
        # a round skipped because another replica holds the duty lock counts: the work was done
        self.duty_ok_at = time.monotonic()
        self.metrics.duty_ok_at.set_to_current_time()
        if result.notified and self.dispatcher is not None:
            self.dispatcher.wake()
        return result

    PRUNE_EVERY_S = 600.0
    """Retention deletes by age in days: a round every ten minutes is plenty, and the other
    rounds need not take the write lock for it."""

    def _run_duties(self) -> DutyResult:
        prune = time.monotonic() - self.pruned_at >= self.PRUNE_EVERY_S
        every = self.config.measures.judge_every(self.config.duty_interval_s)
        slices = max(1, round(every / self.config.duty_interval_s))
        judge_own = time.monotonic() - self.measures_judged_at >= every / slices
        result = run_once(
            self.engine,
            self.policy,
            self.config.silent_threshold_s,
            alerting=self.config.alerting,
            retention=self.config.retention if prune else None,
            absence=time.monotonic() - self.up_since >= self.config.silent_threshold_s,
            measures=self.config.measures if judge_own else None,
            measures_share=(self.measures_slice % slices, slices),
            reports_days=self.config.retention.reports_days,
        )
        if prune and result.ran:
            self.pruned_at = time.monotonic()
        if judge_own and result.ran:
            self.measures_judged_at = time.monotonic()
            self.measures_slice += 1
        return result

    def evaluate(self) -> Evaluated:
        """Judge every queued report now (the evaluator thread does this in a running centre)."""
        done = evaluate_pending(self.engine, self.policy.policy, parsed=self.parsed)
        self._count(done)
        if done.turned_failing:
            self.on_verdicts_changed()
        return done

    def _evaluate_batch(self) -> Evaluated:
        done = evaluate_batch(self.engine, self.policy.policy, parsed=self.parsed)
        self._count(done)
        return done

    def _count(self, done: Evaluated) -> None:
        self.metrics.evaluated.inc(done.reports - done.failed - done.unreadable)
        self.metrics.evaluation_failed.inc(done.failed + done.unreadable)

    def on_reports_stored(self) -> bool:
        """Reports were stored: wake the evaluator.  False when this centre runs no evaluator thread
        (tests, ``serve --no-duties``): the caller then evaluates at once."""
        if self.evaluator is None:
            return False
        self.evaluator.wake()
        return True

    def on_verdicts_changed(self) -> None:
        """A verdict turned failing: run the duties (incidents) now, and then the outbox."""
        if self.duties is not None:
            self.duties.wake()

    def build_senders(self) -> None:
        """One sender per configured channel; one that cannot be built is logged and its notifications wait."""
        self.senders = {}
        for name, channel in self.config.alerting.channels.items():
            try:
                self.senders[name] = build_sender(name, channel)
            except ChannelError as err:
                log.error("alert channel %s unusable, its notifications wait until it is fixed: %s", name, err)

    def dispatch(self) -> Sent:
        done = dispatch_once(self.engine, self.config.alerting, self.senders, self.config.public_url)
        for (channel, kind, ok), count in done.attempts.items():
            counter = self.metrics.notifications_sent if ok else self.metrics.notifications_failed
            counter.labels(channel, kind).inc(count)
        return done

    def start_duties(self) -> None:
        on_disk = self.engine.dialect.name == "sqlite" and self.engine.url.database not in (None, "", ":memory:")
        if self.checkpointer is None and on_disk:
            self.checkpointer = WalCheckpointer(self.engine)
            self.checkpointer.start()
        if self.evaluator is None:
            self.evaluator = EvaluatorThread(
                self.config.duty_interval_s, self._evaluate_batch, self.on_verdicts_changed
            )
            self.evaluator.start()
        if self.duties is None:
            self.duties = DutyThread(self.config.duty_interval_s, self.run_duties)
            self.duties.start()
        if self.dispatcher is None and self.config.alerting.channels:
            self.build_senders()
            self.dispatcher = Dispatcher(self.config.alerting.dispatch_interval_s, self.dispatch)
            self.dispatcher.start()

    def stop(self) -> None:
        for thread in (self.evaluator, self.duties, self.dispatcher, self.checkpointer):
            if thread is not None:
                thread.stop()
                thread.join(timeout=15)
        if self.workers is not None:
            self.workers.shutdown(wait=True)
        if self.writer is not None:
            self.writer.stop()
        if self.verifier is not None:
            self.verifier.stop()
        self.verifier = None
        self.checkpointer = None
        self.workers = None
        self.writer = None
        self.evaluator = None
        self.duties = None
        self.dispatcher = None
        self.engine.dispose()


def open_centre(config: CentralConfig, *, upgrade: bool = True) -> Centre:
    """Connect, bring the schema to the newest version, and load the policy."""
    if config.database_url is None:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(config.db_url)
    if upgrade:
        migrate.upgrade(engine)
        with write_tx(engine) as conn:
            assign_default_tenant(conn, config.default_tenant, utcnow())
            # routes and channels may have changed since the centre last ran: every open incident is
            # looked at again by the first round, which sets when each must be looked at next
            look_again_at_open_incidents(conn)
    holder = PolicyHolder(policy_path(config.policy))
    return Centre(config, engine, holder)
