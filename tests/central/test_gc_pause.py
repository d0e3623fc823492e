"""The collector is paused while any thread builds a large answer, and resumed only as it was."""

from __future__ import annotations

import gc
import threading

from central.gc_pause import collector_paused


def test_paused_until_the_last_thread_leaves_then_as_it_was() -> None:
    assert gc.isenabled()
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    with collector_paused():
        assert not gc.isenabled()
        thread.start()
        inside.wait(10)
    assert not gc.isenabled()  # the other thread is still building
    leave.set()
    thread.join(10)
    assert gc.isenabled()

    gc.disable()  # a process that turned the collector off keeps it off
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
