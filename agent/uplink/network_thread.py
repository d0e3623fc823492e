"""Talking to the centre off the main loop: one network job at a time, in a worker thread.

A centre that accepts connections but never answers holds a request for the transport's
whole read timeout.  In the main loop that would hold up the systemd watchdog, the
spooling of a finished round and a stop (SIGTERM) for as long, so each job (a delivery,
a heartbeat) runs in a daemon thread of its own, and the loop is woken when it is done.
On a stop the loop does not wait for it: what it was sending stays spooled and goes again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Done:
    """A finished job: its name and either its value or the exception it raised."""

    name: str
    value: Any = None
    error: Optional[Exception] = None


class Courier:
    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake
        self._thread: Optional[threading.Thread] = None
        self._done: Optional[Done] = None
        self._job = ""
        self._started = 0.0

    @property
    def busy(self) -> bool:
        """A job runs, or finished and was not taken yet: no new job until :meth:`take`."""
        return self._thread is not None

    def start(self, name: str, job: Callable[[], Any]) -> None:
        if self._thread is not None:
            raise RuntimeError(f"courier busy; cannot start {name}")

        def run() -> None:
            try:
                done = Done(name, value=job())
            except Exception as err:  # noqa: BLE001  handed to the main loop, which decides
                done = Done(name, error=err)
            self._done = done
            self._wake.set()

        thread = threading.Thread(target=run, name=f"courier-{name}", daemon=True)
        self._job, self._started = name, time.monotonic()
        thread.start()
        self._thread = thread

    def take(self) -> Optional[Done]:
        """The finished job, once; None while it runs or when there is none.

        Decided by the result, not by the thread's end: the job wakes the loop as soon as it has
        a result, a moment before its thread ends, and that wake-up must not be missed."""
        if self._thread is None or self._done is None:
            return None
        self._thread = None
        done, self._done = self._done, None
        return done

    @property
    def started(self) -> float:
        """When the running (or last) job started (monotonic)."""
        return self._started

    def overdue(self, now: float, limit: float) -> Optional[str]:
        """The running job's name when it has run for more than ``limit`` seconds (monotonic ``now``).

        The transport's read timeout bounds each wait for a byte, not a whole request: a server
        that sends one byte every few seconds could hold a job for ever."""
        if self._thread is not None and self._done is None and now - self._started > limit:
            return self._job
        return None
