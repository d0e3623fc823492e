"""Group commit: the agents' writes of one centre process, several requests to a transaction,
each answered only after the commit (an answer still means stored).

Why, and the figures: docs/benchmarks.md, "Why ingest is shaped as it is".  A refusing unit
changes nothing (a savepoint where it may write first); a failed batch is retried unit by unit.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, TypeVar, Union

from sqlalchemy import Connection, Engine

from central.db.engine import write_tx
from central.ingest.loop_handoff import BatchThread, LoopAnswers, settle
from central.request_refused import RequestRefused

log = logging.getLogger("tillsyn.central.writer")
MAX_UNITS = 64
"""Units per transaction: a full batch holds SQLite's write lock for a few milliseconds."""

Work = Callable[[Connection], Any]
T = TypeVar("T")


Together = Callable[[Connection, List[Any]], List[Any]]
"""Runs the items of a batch's units of one kind at once; per item its result or its RequestRefused."""


Waiter = Union["Future[Any]", "asyncio.Future[Any]"]
"""Where a unit's answer goes: a thread's future, or a future of the event loop that queued it."""


LockRows = Callable[[Connection, List[str]], None]
"""Locks the rows named by these keys until the transaction ends, always in one order (the same in
every process: central.ingest.receive.lock_agents takes them in the database's id order)."""


@dataclass
class _Unit:
    work: Optional[Work]
    savepoint: bool
    future: Waiter
    together: Optional[Together] = None
    item: Any = None
    loop: Optional[asyncio.AbstractEventLoop] = None
    """Set for a future of that loop, which only the loop's own thread may settle."""
    locks: Tuple[str, ...] = ()
    """Keys of the rows the unit will lock (its agent's id)."""

    def claim(self) -> bool:
        """False when the request was abandoned before its unit ran: it is not run."""
        if self.loop is None:
            assert isinstance(self.future, Future)
            return self.future.set_running_or_notify_cancel()
        return not self.future.cancelled()


class _Answers:
    """The answers of one batch: thread futures at once, each loop's futures in one call."""

    def __init__(self) -> None:
        self.on_loops = LoopAnswers()
        self.given: Set[int] = set()

    def give(self, unit: _Unit, ok: bool, value: Any) -> None:
        """The unit's answer, unless it already has one."""
        if id(unit) in self.given:
            return
        self.given.add(id(unit))
        if unit.loop is not None:
            assert isinstance(unit.future, asyncio.Future)
            self.on_loops.add(unit.loop, unit.future, ok, value)
        elif not unit.future.done():
            settle(unit.future, ok, value)

    def send(self) -> None:
        self.on_loops.send()


class GroupWriter(BatchThread[_Unit]):
    """One thread that runs submitted units of work in shared write transactions."""

    def __init__(self, engine: Engine, max_units: int = MAX_UNITS, lock_rows: Optional[LockRows] = None) -> None:
        """``lock_rows``: when given, a transaction first locks every row its units name (``locks=``)
        in one order, so that two processes' batches touching the same rows in different
        orders wait for each other instead of deadlocking (PostgreSQL; SQLite locks the database)."""
        super().__init__("tillsyn-writer", "group writer", max_units)
        self.engine = engine
        self.lock_rows = lock_rows

    def submit(
        self, work: Callable[[Connection], T], *, savepoint: bool = False, locks: Tuple[str, ...] = ()
    ) -> Future[T]:
        """Queue ``work(conn)``; the future holds its result once the transaction committed, or
        its refusal, or the database's error.  ``locks``: keys of the rows ``work`` will lock."""
        future: Future[T] = Future()
        self.put(_Unit(work, savepoint, future, locks=locks))
        return future

    def submit_together(self, together: Together, item: Any, *, locks: Tuple[str, ...] = ()) -> Future[Any]:
        """Queue ``item`` for ``together(conn, items)`` with the other items of its kind in the batch
        (after the batch's single units): ``together`` must refuse an item only before writing for it."""
        future: Future[Any] = Future()
        self.put(_Unit(None, False, future, together, item, locks=locks))
        return future

    async def run(self, work: Callable[[Connection], T], *, savepoint: bool = False, locks: Tuple[str, ...] = ()) -> T:
        """:meth:`submit` for a request on the event loop: await the committed result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self.put(_Unit(work, savepoint, future, loop=loop, locks=locks))
        return await future

    async def run_together(self, together: Together, item: Any, *, locks: Tuple[str, ...] = ()) -> Any:
        """:meth:`submit_together` for a request on the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.put(_Unit(None, False, future, together, item, loop, locks))
        return await future

    def run_batch(self, batch: List[_Unit]) -> None:
        # a unit whose request was abandoned before it ran is not run (its client never had an answer)
        batch = [u for u in batch if u.claim()]
        answers = _Answers()
        try:
            if batch:
                self._commit(batch, answers)
        except Exception as err:  # every unit gets an answer, whatever failed
            log.exception("the group writer failed a batch of %d requests", len(batch))
            for u in batch:
                answers.give(u, False, err)
        finally:
            answers.send()

    def _commit(self, batch: List[_Unit], answers: _Answers) -> None:
        try:
            outcomes = self._transaction(batch)
        except Exception as err:  # noqa: BLE001  the database failed the batch: each unit alone
            if len(batch) > 1:
                log.warning("a transaction of %d requests failed (%s); running each alone", len(batch), err)
                for unit in batch:
                    self._commit([unit], answers)
            else:
                answers.give(batch[0], False, err)
            return
        for unit, (ok, value) in zip(batch, outcomes):
            answers.give(unit, ok, value)

    def _transaction(self, batch: List[_Unit]) -> List[Tuple[bool, Any]]:
        outcomes: Dict[int, Tuple[bool, Any]] = {}
        kinds: Dict[Together, List[int]] = {}
        with write_tx(self.engine) as conn:
            keys = sorted({key for unit in batch for key in unit.locks})
            if keys and self.lock_rows is not None:
                self.lock_rows(conn, keys)
            for index, unit in enumerate(batch):
                if unit.together is not None:
                    kinds.setdefault(unit.together, []).append(index)
                    continue
                assert unit.work is not None
                try:
                    if unit.savepoint:
                        with conn.begin_nested():
                            outcomes[index] = (True, unit.work(conn))
                    else:
                        outcomes[index] = (True, unit.work(conn))
                except RequestRefused as err:
                    outcomes[index] = (False, err)
            for together, indexes in kinds.items():
                answers = together(conn, [batch[i].item for i in indexes])
                if len(answers) != len(indexes):  # before the commit: a wrong count must write nothing
                    raise RuntimeError(f"{len(answers)} answers for {len(indexes)} items")
                for index, answer in zip(indexes, answers):
                    outcomes[index] = (not isinstance(answer, RequestRefused), answer)
            done = [outcomes[index] for index in range(len(batch))]
        return done
