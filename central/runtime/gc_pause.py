"""Pausing Python's cyclic garbage collector while one large answer is built.

Building the list of 10,000 nodes creates some 50,000 objects that all live until the answer is
serialised; the collector, triggered by the allocations alone, would walk them (and the rest of the
heap) several times on the way and find nothing to free: about a third of the request's time. With
the collector paused they are freed by reference counting once the bytes are made, as before.
"""

from __future__ import annotations

import gc
import threading
import time
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_pausing = 0
"""How many threads are inside collector_paused(); the collector runs again when the last leaves."""
_resume = False
_since = 0.0
"""When the current pause began (monotonic)."""
MAX_PAUSE_S = 5.0
"""Overlapping answers could keep the collector off for good: a thread entering a pause that has
lasted longer than this collects once (as the collector would have) and the pause starts anew."""


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection while inside (in any thread); resumed as it was when the last one leaves."""
    global _pausing, _resume  # noqa: PLW0603  one process-wide switch, as gc itself is
    global _since  # noqa: PLW0603
    collect = False
    with _lock:
        now = time.monotonic()
        if _pausing == 0:
            _resume = gc.isenabled()
            gc.disable()
            _since = now
        elif now - _since > MAX_PAUSE_S:
            collect, _since = True, now
        _pausing += 1
    if collect:
        gc.collect()
    try:
        yield
    finally:
        with _lock:
            _pausing -= 1
            if _pausing == 0 and _resume:
                gc.enable()
