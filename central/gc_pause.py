"""Pausing Python's cyclic garbage collector while one large answer is built.

Building the list of 10,000 nodes creates some 50,000 objects that all live until the answer is
serialised; the collector, triggered by the allocations alone, would walk them (and the rest of the
heap) several times on the way and find nothing to free: about a third of the request's time. With
the collector paused they are freed by reference counting once the bytes are made, as before.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_pausing = 0
"""How many threads are inside collector_paused(); the collector runs again when the last leaves."""
_resume = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection while inside (in any thread); resumed as it was when the last one leaves."""
    global _pausing, _resume  # noqa: PLW0603  one process-wide switch, as gc itself is
    with _lock:
        if _pausing == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _lock:
            _pausing -= 1
            if _pausing == 0 and _resume:
                gc.enable()
