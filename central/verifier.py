"""Ed25519 checks of the agents' requests in a thread of their own, beside the event loop.

Checking a signature is the largest single cost of a heartbeat (about 0.1 ms here), and
the cryptography library lets go of Python's interpreter lock while it checks, so a
thread can check on the machine's other core while the event loop serves the next
requests.  A thread per request would cost more in hand-overs than it saves; this one
takes every check queued since it last looked, and hands the answers of a batch back to
each waiting loop in one call (central/handback.py).  Measured: 20 % more heartbeats per
process than checking on the event loop (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import List, Optional, Sequence, Tuple

from central.handback import LoopAnswers
from evidence.signing import SignatureError, verify

log = logging.getLogger("tillsyn.central.verifier")
Signed = Tuple[bytes, str]
"""(the exact bytes, their signature as sent)"""
Failure = Tuple[int, SignatureError]
"""(the position of the first (body, signature) that does not check out, why)"""
_Job = Tuple[asyncio.AbstractEventLoop, "asyncio.Future[Optional[Failure]]", str, Sequence[Signed]]


class Verifier:
    """One thread that checks queued signatures, a batch of requests per wake-up."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Optional[_Job]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="tillsyn-verifier", daemon=True)
        self._thread.start()

    async def first_failure(self, public_key: str, signed: Sequence[Signed]) -> Optional[Failure]:
        """None when every body is signed by ``public_key``; else the first that is not, and why."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Optional[Failure]] = loop.create_future()
        with self._lock:
            if self._stopped:
                raise RuntimeError("the signature checker is stopped")
            self._queue.put((loop, future, public_key, signed))
        return await future

    def stop(self, timeout: float = 15.0) -> None:
        """Check what is queued, then end the thread."""
        with self._lock:
            self._stopped = True
            self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            jobs: List[_Job] = []
            while job is not None:
                jobs.append(job)
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
            answers = LoopAnswers()
            for loop, future, public_key, signed in jobs:
                if future.cancelled():  # the client went away
                    continue
                try:
                    answers.add(loop, future, True, _first_failure(public_key, signed))
                except Exception as err:  # the request fails, the thread goes on
                    log.exception("checking a signature failed")
                    answers.add(loop, future, False, err)
            answers.send()
            if job is None:
                return


def _first_failure(public_key: str, signed: Sequence[Signed]) -> Optional[Failure]:
    for index, (body, signature) in enumerate(signed):
        try:
            verify(public_key, body, signature)
        except SignatureError as err:
            return index, err
    return None
