"""When collectors run: each on its own interval (plus jitter), and soon after a file event or a changed probe.

File events arrive from the watcher's thread in bursts (a write is several events), so they
are debounced: the collectors they name run once the first event is ``DEBOUNCE_S`` old.
A probe that saw a change (a UPS going on battery) runs its collector at once.
"""

from __future__ import annotations

import random
import threading
from typing import Dict, Iterable, List, Set

from agent.config import AgentConfig

DEBOUNCE_S = 1.0
COALESCE_S = 5.0
"""Collectors due within this many seconds join the round that is starting (one report, not several)."""


class Schedule:
    def __init__(self) -> None:
        self.due: Dict[str, float] = {}
        """Collector name -> when it is due next (time.monotonic)."""
        self._triggered: Set[str] = set()
        self._triggered_at = 0.0
        self._lock = threading.Lock()

    def enable(self, names: Iterable[str], now: float) -> None:
        """These collectors (agent.yaml's enabled ones) run in the next round, then on their intervals."""
        self.due = {name: min(self.due.get(name, 0.0), now) for name in names}

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
        """The collectors for a round starting now (due, due soon or triggered), each scheduled anew."""
        enabled = {n for n, c in config.collectors.items() if c.enabled}
        if not triggered and min((self.due.get(n, 0.0) for n in enabled), default=now + 1) > now:
            return []
        names = sorted(n for n in enabled if self.due.get(n, 0.0) <= now + COALESCE_S or n in triggered)
        for name in names:
            jitter = config.jitter * random.random()  # noqa: S311  not crypto
            self.due[name] = now + config.collectors[name].interval * (1 + jitter)
        return names

    def wake_times(self, now: float) -> List[float]:
        """When a round may have to start: the next due collector, the end of the debounce."""
        times = [min(self.due.values(), default=now + 60)]
        with self._lock:
            if self._triggered:
                times.append(self._triggered_at + DEBOUNCE_S)
        return times
