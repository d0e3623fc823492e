"""Ed25519 checks of the agents' requests in a thread of their own, beside the event loop.

The cryptography library lets go of the interpreter lock while it checks, so the check (a
heartbeat's largest cost) runs on the other core while the loop serves.  One thread takes every
check queued since it last looked and hands a batch's answers back to each waiting loop in one
call (central/ingest/loop_handoff.py); a thread per request costs more in hand-overs.  Figures:
docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import List, Optional, Sequence, Tuple

from central.ingest.loop_handoff import BatchThread, LoopAnswers
from evidence.signing import SignatureError, verify

log = logging.getLogger("tillsyn.central.verifier")
Signed = Tuple[bytes, str]
"""(the exact bytes, their signature as sent)"""
Failure = Tuple[int, SignatureError]
"""(the position of the first (body, signature) that does not check out, why)"""
MOST = 256
"""Requests per batch at most, so the first of a long queue is not kept waiting for the last."""
_Job = Tuple[asyncio.AbstractEventLoop, "asyncio.Future[Optional[Failure]]", str, Sequence[Signed]]


class Verifier(BatchThread[_Job]):
    """One thread that checks queued signatures, a batch of requests per wake-up."""

    def __init__(self) -> None:
        super().__init__("tillsyn-verifier", "signature checker", MOST)

    async def first_failure(self, public_key: str, signed: Sequence[Signed]) -> Optional[Failure]:
        """None when every body is signed by ``public_key``; else the first that is not, and why."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Optional[Failure]] = loop.create_future()
        self.put((loop, future, public_key, signed))
        return await future

    def run_batch(self, batch: List[_Job]) -> None:
        answers = LoopAnswers()
        for loop, future, public_key, signed in batch:
            if future.cancelled():  # the client went away
                continue
            try:
                answers.add(loop, future, True, first_failure(public_key, signed))
            except Exception as err:  # the request fails, the thread goes on
                log.exception("checking a signature failed")
                answers.add(loop, future, False, err)
        answers.send()


def first_failure(public_key: str, signed: Sequence[Signed]) -> Optional[Failure]:
    """None when every body is signed by ``public_key``; else the first that is not, and why (here, now)."""
    for index, (body, signature) in enumerate(signed):
        try:
            verify(public_key, body, signature)
        except SignatureError as err:
            return index, err
    return None
