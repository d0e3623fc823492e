"""Answers worked out in a thread, handed back to the event loops whose requests wait for them.

A future of an event loop may only be settled on the loop's own thread; each
``call_soon_threadsafe`` wakes the loop.  A thread that works through a batch of
requests (the group writer, the signature checker) therefore hands back all of the
batch's answers for one loop in one call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Tuple

log = logging.getLogger("tillsyn.central.handback")
Answer = Tuple["asyncio.Future[Any]", bool, Any]
"""(the waiting future, True for a result or False for an exception, the result or exception)"""


class LoopAnswers:
    """Collects a batch's answers by loop; :meth:`send` hands each loop its answers in one call."""

    def __init__(self) -> None:
        self._by_loop: Dict[asyncio.AbstractEventLoop, List[Answer]] = {}

    def add(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], ok: bool, value: Any) -> None:
        self._by_loop.setdefault(loop, []).append((future, ok, value))

    def send(self) -> None:
        for loop, answers in self._by_loop.items():
            try:
                loop.call_soon_threadsafe(settle_all, answers)
            except RuntimeError:  # the loop closed: nobody waits for these answers any more
                log.debug("%d answers for a closed event loop dropped", len(answers))
        self._by_loop = {}


def settle(future: Any, ok: bool, value: Any) -> None:
    """Set a future's result (``ok``) or exception: an asyncio future on its loop, or a thread's future."""
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def settle_all(answers: List[Answer]) -> None:
    for future, ok, value in answers:
        if not future.done():  # a request abandoned meanwhile gets no answer
            settle(future, ok, value)
