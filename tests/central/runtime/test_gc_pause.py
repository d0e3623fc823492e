"""The collector is paused while any thread builds a large answer, and resumed only as it was."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from central.runtime.gc_pause import collector_paused


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


def test_overlapping_pauses_still_collect_now_and_then(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers that overlap without end must not keep the collector off for good."""
    import central.runtime.gc_pause as pause

    collected = []
    monkeypatch.setattr(pause, "MAX_PAUSE_S", 0.0)
    monkeypatch.setattr(pause.gc, "collect", lambda *a: collected.append(a) or 0)
    with collector_paused():
        assert collected == []  # the first pause does not collect
        time.sleep(0.01)
        with collector_paused():  # a second answer, overlapping, after the bound
            assert not gc.isenabled()
    assert len(collected) == 1
    assert gc.isenabled()
