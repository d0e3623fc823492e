"""``tillsyn-agent run``: the node daemon.

One main loop that never blocks on a collector: collection rounds run in a worker
thread (each collector with its own timeout), and between them the loop spools
results, delivers with backoff, sends heartbeats, answers file events and pings the
systemd watchdog.  SIGTERM/SIGINT stop it cleanly, SIGHUP reloads agent.yaml.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

from agent import __version__, heartbeat, status
from agent.backoff import Backoff
from agent.collect import run_collectors
from agent.config import AgentConfig, ConfigError, load
from agent.delivery import MAX_BATCH_REPORTS, deliver
from agent.errors import TransportError
from agent.identity import load_enrolment, load_key, pseudonym_key
from agent.notify import Notifier
from agent.pseudonymise import Pseudonymiser, pseudonymised
from agent.spool import Spool
from agent.transport import Client
from agent.watch import CONFIG, Watcher
from collectors import REGISTRY
from collectors.base import Context
from evidence.model import Evidence

log = logging.getLogger("tillsyn.agent")
DEBOUNCE_S = 1.0
COALESCE_S = 5.0
"""Collectors due within this many seconds join the round that is starting (one report, not several)."""
MAX_ERRORS = 10
"""Recent errors kept for heartbeats (the wire carries at most 20)."""


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class _Round:
    names: List[str]
    started: float
    collected_at: datetime
    thread: threading.Thread
    records: List[Evidence] = field(default_factory=list)


class Daemon:
    def __init__(
        self, state: Path, config_path: Path, config_required: bool, notifier: Optional[Notifier] = None
    ) -> None:
        self.state = state
        self.config_path = config_path
        self.config_required = config_required
        self.config: AgentConfig = load(config_path, required=config_required)
        self.enrolment = load_enrolment(state)
        self.key = load_key(state)
        self.spool = Spool(state / "spool")
        self.notifier = notifier or Notifier()
        self.client = Client(self.enrolment.server, self.key, self.enrolment.agent_id, self.enrolment.ca_file)
        self.pseudonymiser = Pseudonymiser(pseudonym_key(state))
        self.wake = threading.Event()
        self.stopping = False
        self.reload_requested = False
        self.triggered: Set[str] = set()
        self.trigger_lock = threading.Lock()
        self.triggered_at = 0.0
        self.watcher = Watcher(self._on_files)
        self.due: Dict[str, float] = {}
        self.round: Optional[_Round] = None
        self.backoff = Backoff(self.config.backoff_min, self.config.backoff_max)
        self.next_delivery = 0.0
        self.next_heartbeat = 0.0
        self.ready = False
        self.errors: List[str] = []
        self._last_status = ""
        self.next_probe: Dict[str, float] = {}
        self.probe_keys: Dict[str, Any] = {}
        self.batch_limit = MAX_BATCH_REPORTS
        self._bounds_checked = 0.0
        self.info: Dict[str, Any] = {"started_at": _utc(time.time()), "pid": os.getpid(), "collectors": {}}

    # -- set-up ---------------------------------------------------------------
    def _watch(self) -> None:
        paths: Dict[str, List[str]] = {CONFIG: [str(self.config_path)]}
        for name, conf in self.config.collectors.items():
            if conf.enabled:
                paths[name] = list(REGISTRY[name].watch_paths(conf.settings))
        self.watcher.start(paths)

    def _on_files(self, names: Set[str]) -> None:
        with self.trigger_lock:
            if not self.triggered:
                self.triggered_at = time.monotonic()
            self.triggered |= names
        self.wake.set()

    def _signals(self) -> None:
        def stop(_sig: int, _frame: Any) -> None:
            self.stopping = True
            self.wake.set()

        def reload(_sig: int, _frame: Any) -> None:
            self.reload_requested = True
            self.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    # -- the parts of one loop iteration --------------------------------------
    def _reload(self) -> None:
        try:
            config = load(self.config_path, required=self.config_required)
        except ConfigError as err:
            log.error("new configuration refused, the running one stays in force: %s", err)
            self._note(f"config: {err}")
            return
        # The refusal is over once a valid file is in force: heartbeats stop reporting it.
        self.errors = [e for e in self.errors if not e.startswith("config: ")]
        self.config = config
        self.backoff = Backoff(config.backoff_min, config.backoff_max)
        self.due = {n: min(self.due.get(n, 0.0), time.monotonic()) for n, c in config.collectors.items() if c.enabled}
        self._watch()
        log.info("configuration reloaded from %s", self.config_path)

    def _note(self, error: str) -> None:
        """Remember an error for the next heartbeats: the latest few, each once."""
        kept = [e for e in self.errors if e != error]
        self.errors = [*kept[-(MAX_ERRORS - 1) :], error]

    def _schedule_next(self, name: str, now: float) -> None:
        interval = self.config.collectors[name].interval
        self.due[name] = now + interval * (1 + self.config.jitter * random.random())  # noqa: S311  not crypto

    def _start_round(self, now: float) -> None:
        with self.trigger_lock:
            triggered = set(self.triggered) if now - self.triggered_at >= DEBOUNCE_S else set()
            self.triggered -= triggered
        if CONFIG in triggered:
            triggered.discard(CONFIG)
            self._reload()
        enabled = {n for n, c in self.config.collectors.items() if c.enabled}
        if not triggered and min((self.due.get(n, 0.0) for n in enabled), default=now + 1) > now:
            return
        names = sorted(n for n in enabled if self.due.get(n, 0.0) <= now + COALESCE_S or n in triggered)
        if not names:
            return
        for name in names:
            self._schedule_next(name, now)
        current = _Round(names, now, datetime.now(timezone.utc), threading.Thread())

        def work() -> None:
            current.records = run_collectors(self.config, only=names)
            self.wake.set()

        current.thread = threading.Thread(target=work, name="collection-round", daemon=True)
        self.round = current
        current.thread.start()

    def _finish_round(self) -> None:
        current = self.round
        if current is None or current.thread.is_alive():
            return
        self.round = None
        records = current.records
        if self.config.pseudonymise:
            records = [pseudonymised(r, self.pseudonymiser) for r in records]
        spooled = self.spool.add(self.key, self.enrolment.agent_id, __version__, current.collected_at, records)
        for record in records:
            self.info["collectors"][record.collector] = {
                "last_run": _utc(current.collected_at.timestamp()),
                "status": record.status.value,
                "duration_ms": round(record.duration_ms, 1),
                "error": record.error,
            }
            if record.error:
                log.warning(
                    "%s: %s",
                    record.collector,
                    record.error,
                    extra={"collector": record.collector, "control": ",".join(record.controls)},
                )
        log.info("report %d spooled (%s)", spooled.seq, ", ".join(current.names))
        if not self.ready:
            self.ready = True
            self.notifier.ready(f"first collection spooled (report {spooled.seq})")
        self.next_delivery = 0.0

    def _probe(self, now: float) -> None:
        """Quick checks (e.g. UPS status every few seconds); a changed answer runs the collector now."""
        for name, conf in self.config.collectors.items():
            spec = REGISTRY[name]
            if not conf.enabled or conf.poll <= 0 or spec.probe is None or now < self.next_probe.get(name, 0.0):
                continue
            self.next_probe[name] = now + conf.poll
            try:
                key = spec.probe(Context(settings=conf.settings, command_timeout=self.config.command_timeout))
            except Exception as err:  # noqa: BLE001  a failing probe only means no early run
                log.debug("probe of %s failed: %s", name, err)
                continue
            if name in self.probe_keys and self.probe_keys[name] != key:
                log.info("%s changed (%s): collecting now", name, key, extra={"collector": name})
                with self.trigger_lock:
                    self.triggered.add(name)
                    self.triggered_at = min(self.triggered_at, now - DEBOUNCE_S) if self.triggered else now - DEBOUNCE_S
            self.probe_keys[name] = key

    def _deliver(self, now: float) -> None:
        if now < self.next_delivery or not self.spool.depth():
            return
        try:
            # One batch per turn of the loop: a long backlog after an outage must not keep the
            # loop (and its watchdog pings and heartbeats) away for minutes.
            result = deliver(self.spool, self.client, max_batches=1, batch_limit=self.batch_limit)
        except TransportError as err:
            delay = self.backoff.failed()
            self.next_delivery = now + delay
            self.info["last_delivery_error"] = str(err)
            log.warning("delivery failed, retrying in %.0f s: %s", delay, err)
            return
        self.backoff.succeeded()
        self.batch_limit = result.batch_limit
        if result.pending:
            self.next_delivery = 0.0
            self.wake.set()
        self.info["last_delivery_at"] = _utc(time.time())
        self.info.pop("last_delivery_error", None)
        if result.rejected:
            self._note(f"{result.rejected} report(s) refused by the centre, kept in spool/rejected")

    def heartbeat_interval(self) -> int:
        """agent.yaml's interval, but never slower than the centre asked for at enrolment."""
        asked = self.enrolment.heartbeat_interval
        return min(self.config.heartbeat_interval, asked) if asked else self.config.heartbeat_interval

    def _heartbeat(self, now: float) -> None:
        if now < self.next_heartbeat:
            return
        self.next_heartbeat = now + self.heartbeat_interval()
        dropped = int(self.spool.dropped().get("count", 0))
        errors = list(self.errors) + ([f"{dropped} report(s) dropped at the spool bound"] if dropped else [])
        try:
            heartbeat.send(
                self.client, self.state, self.enrolment.agent_id, datetime.now(timezone.utc), self.spool.depth(), errors
            )
            self.info["last_heartbeat_at"] = _utc(time.time())
        except TransportError as err:
            log.warning("heartbeat failed: %s", err)

    def _report_status(self) -> None:
        """Write status.json and tell systemd, only when something changed (each write is fsynced)."""
        depth = self.spool.depth()
        self.info.update(
            {
                "spool_depth": depth,
                "dropped": self.spool.dropped().get("count", 0),
                "agent_id": self.enrolment.agent_id,
                "server": self.enrolment.server,
            }
        )
        snapshot = json.dumps(self.info, sort_keys=True, default=str)
        if snapshot == self._last_status:
            return
        self._last_status = snapshot
        status.save(self.state, self.info)
        last = self.info.get("last_delivery_at", "never")
        self.notifier.status(f"last delivery {last}; spool depth {depth}")

    def _sleep_for(self, now: float) -> float:
        candidates = [self.next_heartbeat - now, min(self.due.values(), default=now + 60) - now]
        if self.spool.depth():
            candidates.append(self.next_delivery - now)
        if self.triggered:
            candidates.append(self.triggered_at + DEBOUNCE_S - now)
        if self.notifier.watchdog_interval:
            candidates.append(self.notifier.watchdog_interval / 2)
        candidates += [at - now for at in self.next_probe.values()]
        return max(0.05, min(candidates))

    # -- the loop ---------------------------------------------------------------
    def run(self) -> int:
        self._signals()
        self._watch()
        now = time.monotonic()
        self.due = {n: now for n, c in self.config.collectors.items() if c.enabled}
        log.info(
            "agent %s started, reporting to %s",
            self.enrolment.agent_id,
            self.enrolment.server,
            extra={"agent_id": self.enrolment.agent_id},
        )
        while not self.stopping:
            now = time.monotonic()
            if self.reload_requested:
                self.reload_requested = False
                self._reload()
            self._finish_round()
            self._probe(now)
            if self.round is None:
                self._start_round(now)
            if now - self._bounds_checked >= 60 or self.next_delivery == 0.0:
                self._bounds_checked = now
                self.spool.enforce_bounds(self.config.spool_max_bytes, self.config.spool_max_age, time.time())
            self._deliver(now)
            self._heartbeat(now)
            self._report_status()
            self.notifier.watchdog()
            self.wake.wait(self._sleep_for(time.monotonic()))
            self.wake.clear()
        self.notifier.stopping()
        self.watcher.stop()
        self.client.close()
        self._report_status()
        log.info("agent stopped")
        return 0
