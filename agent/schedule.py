"""When collectors run: in shared rounds, one report per round, and soon after a file event or a changed probe.

A node runs its collectors in *rounds*, one report each. The shortest interval among the enabled
collectors sets the pace: after a round starting at ``S`` the next is due at
``S + shortest x (1 + jitter x r)``, ``r`` drawn at random for each round, so a fleet started
together (a power cut, a mass reboot) drifts apart and does not collect or send in step.

A collector joins a round once its interval since its last run is over (``COALESCE_S`` of
grace), and it must run by ``interval x (1 + jitter)`` after its last run: when no round has
started by then, that deadline starts one. Collectors whose intervals are multiples of the
shortest (the shipped 300, 900 and 3600 s) therefore ride along with the round they fall into,
never early and at most ``jitter x interval`` late (plus the time a running round still takes).

File events arrive from the watcher's thread in bursts (a write is several events), so they
are debounced: the collectors they name run once the first event is ``DEBOUNCE_S`` old.
A probe that saw a change (a UPS going on battery) runs its collector at once. Such a
triggered run is extra: the collectors it names run alone (with a round due within
``COALESCE_S``, if one is), and keep their place in the rounds.
"""

from __future__ import annotations

import random
import threading
from typing import Dict, Iterable, List, Set

from agent.config import AgentConfig

DEBOUNCE_S = 1.0
COALESCE_S = 5.0
"""A collector whose interval ends within this many seconds joins the round that is starting."""


class Schedule:
    def __init__(self) -> None:
        self.due: Dict[str, float] = {}
        """Collector name -> when it starts a round at the latest (time.monotonic)."""
        self.ready: Dict[str, float] = {}
        """Collector name -> from when it joins a round that starts (its interval is over)."""
        self._triggered: Set[str] = set()
        self._triggered_at = 0.0
        self._lock = threading.Lock()

    def enable(self, names: Iterable[str], now: float) -> None:
        """These collectors (agent.yaml's enabled ones) run in the next round, then on their intervals."""
        names = list(names)
        self.due = {name: min(self.due.get(name, 0.0), now) for name in names}
        self.ready = {name: min(self.ready.get(name, 0.0), now) for name in names}

    def trigger(self, names: Set[str], now: float, at_once: bool = False) -> None:
        """Run these soon: after the debounce (file events, from any thread) or ``at_once`` (a probe)."""
        with self._lock:
            if not self._triggered or at_once:
                self._triggered_at = now - DEBOUNCE_S if at_once else now
            self._triggered |= names

    def take_triggered(self, now: float) -> Set[str]:
        """What was triggered, once the debounce is over (else nothing yet)."""
        with self._lock:
            if not self._triggered or now - self._triggered_at < DEBOUNCE_S:
                return set()
            taken, self._triggered = self._triggered, set()
        return taken

    def take_due(self, config: AgentConfig, now: float, triggered: Set[str]) -> List[str]:
        """The collectors for a round starting now (due, ready or triggered); those due or ready are scheduled anew."""
        enabled = {n for n, c in config.collectors.items() if c.enabled}
        scheduled: Set[str] = set()
        # A triggered round takes along a round due within COALESCE_S (one report, not two).
        soon = now + (COALESCE_S if triggered else 0.0)
        if min((self.due.get(n, 0.0) for n in enabled), default=now + COALESCE_S + 1) <= soon:
            scheduled = {n for n in enabled if self.ready.get(n, 0.0) <= now + COALESCE_S}
            shortest = min(config.collectors[n].interval for n in enabled)
            r = random.random()  # noqa: S311  not crypto
            for name in scheduled:
                interval = config.collectors[name].interval
                self.ready[name] = now + interval
                # The pace setters start the next round at a random point of their window; the others
                # ride along with a round and start one themselves only at the end of theirs.
                share = r if interval == shortest else 1.0
                self.due[name] = now + interval * (1 + config.jitter * share)
        return sorted(scheduled | {n for n in triggered if n in enabled})

    def wake_times(self, now: float) -> List[float]:
        """When a round may have to start: the next due collector, the end of the debounce."""
        times = [min(self.due.values(), default=now + 60)]
        with self._lock:
            if self._triggered:
                times.append(self._triggered_at + DEBOUNCE_S)
        return times
