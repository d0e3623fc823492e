"""Threads that work through queued requests a batch at a time, and hand the answers back to the
event loops whose requests wait for them.

A future of an event loop may only be settled on the loop's own thread; each
``call_soon_threadsafe`` wakes the loop.  A thread that works through a batch of
requests (the group writer, the signature checker) therefore hands back all of the
batch's answers for one loop in one call.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any, Dict, Generic, List, Optional, Tuple, TypeVar

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
        if future.done():  # a request abandoned meanwhile gets no answer
            continue
        try:
            settle(future, ok, value)
        except Exception as err:  # e.g. StopIteration cannot be set on a future: no answer may be stranded
            log.exception("an answer could not be handed back")
            future.set_exception(RuntimeError(f"the answer could not be handed back: {err!r}"))


J = TypeVar("J")


class BatchThread(Generic[J]):
    """A thread that takes whatever was queued since it last looked (up to ``most``) as one batch."""

    def __init__(self, name: str, what: str, most: int) -> None:
        self.what = what
        self.most = most
        self._queue: queue.SimpleQueue[Optional[J]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, job: J) -> None:
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"the {self.what} is stopped")
            self._queue.put(job)

    def stop(self, timeout: float = 15.0) -> None:
        """Finish what is queued, then end the thread; nothing can be queued after."""
        with self._lock:
            self._stopped = True
            self._queue.put(None)
        self._thread.join(timeout)

    def run_batch(self, batch: List[J]) -> None:
        """Work through one batch and answer each job (called in the thread, never with an empty batch)."""
        raise NotImplementedError

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self.most:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            try:
                self.run_batch(batch)
            except Exception:  # the thread must outlive any one batch (run_batch answers its jobs)
                log.exception("the %s failed a batch of %d", self.what, len(batch))
