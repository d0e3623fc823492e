"""``tillsyn-agent run``: the node daemon.

One main loop that never blocks on a collector or on the centre: collection rounds run
in a worker thread (each collector with its own timeout), deliveries and heartbeats in
the courier's thread, and between them the loop spools results, answers file events and
pings the systemd watchdog.  An unexpected exception in one step of the loop is logged
and reported, and the loop turns on; a full disk is reported, never fatal.
SIGTERM/SIGINT stop it cleanly (within ``STOP_GRACE_S`` and a moment), SIGHUP reloads agent.yaml.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from agent import __version__, status
from agent.collect import Running, run_collectors
from agent.config import AgentConfig, ConfigError, load
from agent.identity import load_enrolment, load_key, pseudonym_key
from agent.notify import Notifier
from agent.pseudonymise import Pseudonymiser, pseudonymised
from agent.recent_errors import Recent
from agent.schedule import Schedule
from agent.spool import Spool
from agent.state import os_reason
from agent.uplink.backoff import Backoff
from agent.uplink.pace import Link, utc
from agent.watch import CONFIG, Watcher
from collectors import REGISTRY
from collectors.base import Context
from evidence.model import Evidence

log = logging.getLogger("tillsyn.agent")
MIN_SLEEP_S = 0.05
FAILED_TURN_PAUSE_S = 1.0
"""After a step failed unexpectedly, the loop pauses this long (the watchdog still gets its pings)."""
STOP_GRACE_S = 10.0
"""On SIGTERM, how long a running collection may still take to be spooled (TimeoutStopSec is 30 s)."""


@dataclass
class _Round:
    names: List[str]
    started: float
    collected_at: datetime
    thread: threading.Thread
    records: List[Evidence] = field(default_factory=list)
    collected: bool = False
    """Its records are pseudonymised and shown in the status: only spooling is left (or to retry)."""


class Daemon:
    def __init__(
        self,
        state: Path,
        config_path: Path,
        config_required: bool,
        notifier: Optional[Notifier] = None,
        root: Path = Path("/"),
    ) -> None:
        self.state = state
        self.root = root
        """The filesystem root the collectors read below (``--root``; tests and captured trees)."""
        self.config_path = config_path
        self.config_required = config_required
        self.config: AgentConfig = load(config_path, required=config_required)
        self.enrolment = load_enrolment(state)
        self.key = load_key(state)
        self.spool = Spool(state / "spool")
        self.notifier = notifier or Notifier()
        self.pseudonymiser = Pseudonymiser(pseudonym_key(state))
        self.wake = threading.Event()
        self.info: Dict[str, Any] = {"started_at": utc(time.time()), "pid": os.getpid(), "collectors": {}}
        self.recent = Recent()
        self.link = Link(state, self.enrolment, self.key, self.spool, self.wake, self.info, self.recent)
        self.link.configure(self.config)
        self.running = Running()
        self.stopping = False
        self.reload_requested = False
        self.schedule = Schedule()
        self.watcher = Watcher(self._on_files)
        self.round: Optional[_Round] = None
        self.spool_backoff = Backoff(self.config.backoff_min, self.config.backoff_max)
        """Retries of a round that could not be spooled (a full disk), as for deliveries."""
        self.next_spool_try = 0.0
        self.spool_error: Optional[str] = None
        self.bounds_checked = -math.inf
        self.ready = False
        self._last_status = ""
        self._turn_failed = False
        self._told: Dict[str, str] = {}
        self.next_quick_check: Dict[str, float] = {}
        self.quick_check_keys: Dict[str, Any] = {}

    # -- set-up ---------------------------------------------------------------
    def _watch(self) -> None:
        paths: Dict[str, List[str]] = {CONFIG: [str(self.config_path)]}
        for name, conf in self.config.collectors.items():
            if conf.enabled:
                paths[name] = [
                    str(self.root / p.lstrip("/")) for p in REGISTRY[name].watch_paths(conf.settings, self.state)
                ]
        self.watcher.start(paths, below={n for n in paths if n in REGISTRY and REGISTRY[n].watch_below})

    def _on_files(self, names: Set[str]) -> None:
        self.schedule.trigger(names, time.monotonic())
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

    # -- the log ----------------------------------------------------------------
    def _tell(self, topic: str, text: str) -> bool:
        """Whether ``text`` is news for ``topic`` (a failure repeated every turn is logged once)."""
        news = self._told.get(topic) != text
        self._told[topic] = text
        return news

    # -- the parts of one loop iteration --------------------------------------
    def _reload_if_asked(self, _now: float) -> None:
        if self.reload_requested:
            self.reload_requested = False
            self._reload()

    def _reload(self) -> None:
        try:
            config = load(self.config_path, required=self.config_required)
        except ConfigError as err:
            log.error("new configuration refused, the running one stays in force: %s", err)
            self.recent.note(f"config: {err}")
            return
        # The refusal is over once a valid file is in force: heartbeats stop reporting it.
        self.recent.forget("config: ", prefix=True)
        self.config = config
        self.link.configure(config)
        self.spool_backoff = Backoff(config.backoff_min, config.backoff_max)
        self.schedule.enable([n for n, c in config.collectors.items() if c.enabled], time.monotonic())
        self._watch()
        log.info("configuration reloaded from %s", self.config_path)

    def _start_round(self, now: float) -> None:
        if self.round is not None:
            return
        triggered = self.schedule.take_triggered(now)
        if CONFIG in triggered:
            triggered.discard(CONFIG)
            self._reload()
        names = self.schedule.take_due(self.config, now, triggered)
        if not names:
            return
        current = _Round(names, now, datetime.now(timezone.utc), threading.Thread())

        def work() -> None:
            try:
                current.records = run_collectors(
                    self.config, only=names, running=self.running, root=self.root, state_dir=self.state, keep_state=True
                )
            finally:
                self.wake.set()

        current.thread = threading.Thread(target=work, name="collection-round", daemon=True)
        current.thread.start()
        self.round = current

    def _collected(self, current: _Round) -> None:
        """A round's records are in: pseudonymise them, show them in the status, log their errors."""
        if self.config.pseudonymise:
            current.records = [pseudonymised(r, self.pseudonymiser) for r in current.records]
        current.collected = True
        for record in current.records:
            self.info["collectors"][record.collector] = {
                "last_run": utc(current.collected_at.timestamp()),
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

    def _finish_round(self, now: float) -> None:
        """Spool a finished round; when that fails (a full disk) keep it and try again later."""
        current = self.round
        if current is None or current.thread.is_alive() or now < self.next_spool_try:
            return
        try:
            if not current.collected:
                self._collected(current)
            spooled = self.spool.add(
                self.key,
                self.enrolment.agent_id,
                __version__,
                current.collected_at,
                current.records,
                self.link.privacy,
            )
        except Exception as err:  # not only a full disk: the round may not make a report at all
            if isinstance(err, OSError):
                self._spool_failed(current, now, err)
                return
            # Kept, it would be tried again every turn and no other round would start: dropped, said.
            log.error("the collection of %s could not be made a report; dropped", current.collected_at, exc_info=err)
            self.recent.note(f"report not made: {type(err).__name__}: {err}")
            self.round = None
            return
        self.round = None
        self.next_spool_try = 0.0
        self.spool_backoff.succeeded()
        self.recent.forget(self.spool_error)
        self.spool_error = None
        self._told.pop("spool", None)
        log.info("report %d spooled (%s)", spooled.seq, ", ".join(current.names))
        if not self.ready:
            self.ready = True
            self.notifier.ready(f"first collection spooled (report {spooled.seq})")
        self.link.next_delivery = 0.0
        self.bounds_checked = -math.inf  # a report was added: check the bounds now

    def _spool_failed(self, current: _Round, now: float, err: OSError) -> None:
        """A full disk (or another OSError): keep the round in memory and try again later."""
        delay = self.spool_backoff.failed()
        self.next_spool_try = now + delay
        self.spool_error = f"spool: {os_reason(err)}"
        self.recent.note(self.spool_error)
        told = log.error if self._tell("spool", self.spool_error) else log.debug
        told("report not spooled, kept in memory and tried again in %.1f s: %s", delay, err)
        if not self.ready:  # running, and saying what is wrong, is what systemd is to know
            self.ready = True
            self.notifier.ready(f"first collection could not be spooled: {os_reason(err)}")

    def _quick_checks(self, now: float) -> None:
        """Quick checks (e.g. UPS status every few seconds); a changed answer runs the collector now."""
        for name, conf in self.config.collectors.items():
            spec = REGISTRY[name]
            if (
                not conf.enabled
                or conf.poll <= 0
                or spec.quick_check is None
                or now < self.next_quick_check.get(name, 0.0)
            ):
                continue
            self.next_quick_check[name] = now + conf.poll
            try:
                key = spec.quick_check(Context(settings=conf.settings, command_timeout=self.config.command_timeout))
            except Exception as err:  # noqa: BLE001  a failing quick check only means no early run
                log.debug("quick check of %s failed: %s", name, err)
                continue
            if name in self.quick_check_keys and self.quick_check_keys[name] != key:
                log.info("%s changed (%s): collecting now", name, key, extra={"collector": name})
                self.schedule.trigger({name}, now, at_once=True)
            self.quick_check_keys[name] = key

    def _bounds(self, now: float) -> None:
        if now - self.bounds_checked < 60:
            return
        self.bounds_checked = now
        try:
            dropped = self.spool.enforce_bounds(self.config.spool_max_bytes, self.config.spool_max_age, time.time())
        except OSError as err:  # cannot count the drops (a full disk): drop nothing until it can
            if self._tell("bounds", str(err)):
                log.error("spool bounds not enforced: %s", err)
            return
        if dropped:  # counted in dropped.json and reported in heartbeats; said here too
            log.warning(
                "%d report(s) dropped at the spool bound (older than spool.max_age %d s or beyond spool.max_bytes"
                " %d bytes); %d dropped in all",
                dropped,
                self.config.spool_max_age,
                self.config.spool_max_bytes,
                self.spool.dropped().get("count", 0),
            )

    # -- status, sleeping, the loop ---------------------------------------------
    def _report_status(self, _now: float) -> None:
        """Write status.json and tell systemd, only when something changed (each write is fsynced).

        A status that cannot be written (a full disk) stays in memory, is reported in heartbeats
        and is written again on the next turns.
        """
        for problem in self.spool.take_problems():
            self.recent.note(problem)
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
        if snapshot != self._last_status:
            try:
                status.save(self.state, self.info)
            except OSError as err:  # kept in memory and written again on the next turns
                error = f"status: {os_reason(err)}"
                if self._tell("status", error):
                    log.error("status.json not written: %s", err)
                self.recent.note(error)
            else:
                self._last_status = snapshot
                self.recent.forget(self._told.pop("status", None))
        line = f"last delivery {self.info.get('last_delivery_at', 'never')}; spool depth {depth}"
        if self._tell("STATUS", line):
            self.notifier.status(line)

    def _sleep_for(self, now: float) -> float:
        """How long the loop may wait; what cannot be read for it (e.g. the spool's directory) makes
        the wait short, never ends the loop."""
        longest = self.notifier.watchdog_interval / 2 if self.notifier.watchdog_interval else 60.0
        try:
            return self._wait_until_due(now, longest)
        except Exception as err:  # noqa: BLE001  as in _guarded: logged and reported, never fatal
            self._unexpected("waiting", err)
            return min(longest, FAILED_TURN_PAUSE_S)

    def _wait_until_due(self, now: float, longest: float) -> float:
        candidates = [longest]
        if self.round is None:
            # While a round runs, what is due or triggered waits for it (its end wakes the loop).
            candidates += [at - now for at in self.schedule.wake_times(now)]
        elif not self.round.thread.is_alive():
            candidates.append(self.next_spool_try - now)  # a finished round waiting for room on disk
        candidates += [at - now for at in self.link.wake_times()]
        candidates += [at - now for at in self.next_quick_check.values()]
        floor = FAILED_TURN_PAUSE_S if self._turn_failed else MIN_SLEEP_S
        return min(max(floor, min(candidates)), candidates[0])

    def _guarded(self, name: str, step: Callable[[float], None], now: float) -> None:
        """Run one step of the loop; an unexpected exception is logged and reported, never fatal."""
        try:
            step(now)
        except Exception as err:  # noqa: BLE001  logged with its traceback by _unexpected
            self._unexpected(name, err)
            self._turn_failed = True

    def _unexpected(self, name: str, err: Exception) -> None:
        text = f"{name}: unexpected {type(err).__name__}: {err}"
        if self._tell(f"step {name}", text):
            log.exception("%s", text, exc_info=err)
        else:
            log.error("%s (again)", text)
        self.recent.note(text)

    def _turn(self, now: float) -> None:
        self._turn_failed = False
        steps: List[Tuple[str, Callable[[float], None]]] = [
            ("reload", self._reload_if_asked),
            ("spooling", self._finish_round),
            ("quick checks", self._quick_checks),
            ("collection", self._start_round),
            ("spool bounds", self._bounds),
            ("centre", self.link.turn),
            ("status", self._report_status),
        ]
        for name, step in steps:
            if self.stopping:
                return
            self._guarded(name, step, now)

    def _stop(self) -> None:
        """Spool the round that is running (waiting up to STOP_GRACE_S), then let go of everything."""
        self.notifier.stopping()
        self.watcher.stop()
        current = self.round
        if current is not None and current.thread.is_alive():
            log.info("stopping: waiting up to %.0f s for the running collection", STOP_GRACE_S)
            current.thread.join(STOP_GRACE_S)
        if current is not None and not current.thread.is_alive():
            self.next_spool_try = 0.0
            self._guarded("spooling", self._finish_round, time.monotonic())
        if self.round is not None:
            log.warning("stopping: the collection that started at %s was not spooled", self.round.collected_at)
        self.link.close()
        self._guarded("status", self._report_status, time.monotonic())

    def run(self) -> int:
        self._signals()
        self._watch()
        self.schedule.enable([n for n, c in self.config.collectors.items() if c.enabled], time.monotonic())
        log.info(
            "agent %s started, reporting to %s",
            self.enrolment.agent_id,
            self.enrolment.server,
            extra={"agent_id": self.enrolment.agent_id},
        )
        while not self.stopping:
            # Cleared before the turn: a wake-up during it (a round or a job ending) is not lost.
            self.wake.clear()
            self._turn(time.monotonic())
            self.notifier.watchdog()
            self.wake.wait(self._sleep_for(time.monotonic()))
        self._stop()
        log.info("agent stopped")
        return 0
