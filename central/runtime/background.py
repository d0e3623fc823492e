"""The shape every background thread of a centre process shares: a round every ``interval``
seconds, sooner when woken, until stopped (the duties, the evaluator, the outbox)."""

from __future__ import annotations

import threading


class Background(threading.Thread):
    """A daemon thread with an interval, a wake-up (:meth:`wake`) and a stop; ``run`` is the subclass's."""

    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self.woken = threading.Event()

    def wake(self) -> None:
        """Run a round now instead of at the end of the interval."""
        self.woken.set()

    def stop(self) -> None:
        self.stopping.set()
        self.woken.set()
