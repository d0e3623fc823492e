"""Answers handed back to the event loop (central/ingest/loop_handoff.py): none is stranded by another."""

from __future__ import annotations

import asyncio

import pytest

from central.ingest.loop_handoff import settle_all


def test_an_answer_that_cannot_be_set_fails_its_own_request_and_the_rest_are_answered() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        first, odd, abandoned, last = (loop.create_future() for _ in range(4))
        abandoned.cancel()
        # a future refuses StopIteration as its exception (TypeError): that must not strand `last`
        settle_all([(first, True, 1), (odd, False, StopIteration()), (abandoned, True, 3), (last, True, 4)])
        assert first.result() == 1 and last.result() == 4
        with pytest.raises(RuntimeError, match="could not be handed back"):
            odd.result()
        assert abandoned.cancelled()

    asyncio.run(scenario())
