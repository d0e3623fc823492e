"""Running collectors so that one failure or hang never stops the others.

Each collector runs in its own daemon thread, concurrently (most time is spent
waiting on sockets and commands).  A collector that raises is reported as errored
with the exception (secrets scrubbed); one that overruns its timeout is reported
as errored and abandoned (its commands are killed by the runner's own timeouts);
while its thread still runs, the collector is not started again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from agent.config import AgentConfig
from agent.safe_text import utf8_safe
from agent.scrub import scrub
from collectors.base import CollectorSpec, Context, RoundReads
from evidence.model import Evidence, Gap, Outcome, utc_iso


@dataclass
class _Slot:
    outcome: Optional[Outcome] = None
    started: float = 0.0
    finished: float = 0.0


def _call(spec: CollectorSpec, ctx: Context, slot: _Slot) -> None:
    slot.started = time.monotonic()
    try:
        outcome = spec.collect(ctx)
        if not isinstance(outcome, Outcome):
            outcome = Outcome.failed(f"collector returned {type(outcome).__name__}, not an Outcome")
    except Exception as err:  # noqa: BLE001  any collector bug becomes an errored record
        outcome = Outcome.failed(scrub(f"collector crashed: {type(err).__name__}: {err}"))
    slot.outcome = outcome
    slot.finished = time.monotonic()


class Running:
    """Collector threads that may still run after their round gave up on them, by collector name.

    A collector whose previous run has not ended is not started again: every round would
    add one more stuck thread, until the unit's ``TasksMax`` made every thread start fail.
    """

    def __init__(self) -> None:
        self._threads: Dict[str, Tuple[threading.Thread, datetime]] = {}
        self._lock = threading.Lock()

    def since(self, name: str) -> Optional[datetime]:
        """When the still-running thread of ``name`` started; None when it is not running."""
        with self._lock:
            entry = self._threads.get(name)
            if entry is None or not entry[0].is_alive():
                self._threads.pop(name, None)
                return None
            return entry[1]

    def thread(self, name: str) -> Optional[threading.Thread]:
        with self._lock:
            entry = self._threads.get(name)
        return entry[0] if entry else None

    def add(self, name: str, thread: threading.Thread, started: datetime) -> None:
        with self._lock:
            self._threads[name] = (thread, started)


def _start(spec: CollectorSpec, ctx: Context, slot: _Slot, running: Running, moment: datetime) -> None:
    """Start the collector's thread, or put in ``slot`` why it cannot or must not run now."""
    since = running.since(spec.name)
    if since is not None:
        slot.outcome = Outcome.failed(
            f"still running since {utc_iso(since)} (abandoned after its timeout); not started again"
        )
        return
    thread = threading.Thread(target=_call, args=(spec, ctx, slot), name=f"collector-{spec.name}", daemon=True)
    try:
        thread.start()
    except RuntimeError as err:  # "can't start new thread": the task limit is reached
        slot.outcome = Outcome.failed(f"could not start: {err}")
        return
    running.add(spec.name, thread, moment)


def run_collectors(  # noqa: PLR0913  keyword-only seams (registry, base, clock, running) for tests and the daemon
    config: AgentConfig,
    *,
    only: Optional[Sequence[str]] = None,
    root: Path = Path("/"),
    registry: Optional[Dict[str, CollectorSpec]] = None,
    base: Optional[Context] = None,
    clock: Callable[[], float] = time.monotonic,
    running: Optional[Running] = None,
    state_dir: Optional[Path] = None,
    keep_state: bool = False,
) -> List[Evidence]:
    """Run the enabled collectors (or those named in ``only``) and return their evidence.

    ``running`` remembers threads across calls (the daemon's rounds), so that a collector
    still stuck in an earlier round is reported instead of started again.  ``state_dir`` is
    where collectors keep caches between runs (the updates collector's package simulation);
    ``keep_state`` lets them write state there (the daemon's runs).  Reads several collectors
    make (the socket table, the process list) are done once per call and shared among them.
    """
    if registry is None:
        from collectors import REGISTRY

        registry = REGISTRY
    running = running or Running()
    names = list(only) if only else [n for n, c in config.collectors.items() if c.enabled]
    base_ctx = replace(
        base or Context(root=root, command_timeout=config.command_timeout, state_dir=state_dir, keep_state=keep_state),
        shared=RoundReads(),
    )
    jobs = []
    for name in names:
        spec = registry[name]
        ctx = base_ctx.with_settings(config.collectors[name].settings)
        slot = _Slot()
        moment = ctx.now()
        _start(spec, ctx, slot, running, moment)
        jobs.append((spec, slot, moment, clock()))
    records = []
    for spec, slot, moment, started in jobs:
        timeout = config.collectors[spec.name].timeout
        thread = running.thread(spec.name) if slot.outcome is None else None
        if thread is not None:
            thread.join(max(0.0, started + timeout - clock()))
        if slot.outcome is None:
            outcome = Outcome.failed(f"timed out after {timeout:g} s; abandoned")
            duration = timeout * 1000
        else:
            outcome = slot.outcome
            duration = (slot.finished - slot.started) * 1000
        records.append(
            Evidence(
                collector=spec.name,
                collector_version=spec.version,
                controls=spec.controls,
                collected_at=moment,
                duration_ms=duration,
                status=outcome.status,
                # paths and names read from the system may not be UTF-8 (agent/safe_text.py)
                observed=utf8_safe(dict(outcome.observed)),
                gaps=tuple(Gap(utf8_safe(g.what), utf8_safe(g.reason)) for g in outcome.gaps),
                error=utf8_safe(outcome.error),
            )
        )
    return records
