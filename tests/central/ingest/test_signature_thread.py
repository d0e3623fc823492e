"""The signature thread (central/ingest/signature_thread.py): right answers, a batch handed back in one call,
and a failure that fails one request, not the thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, List, Optional

import pytest

from central.ingest import signature_thread
from central.ingest.signature_thread import Failure, Verifier
from evidence.signing import new_private_key, public_key_text, sign
from tests.central.conftest import count_hand_overs


def test_each_check_gets_its_own_answer() -> None:
    key, other = new_private_key(), new_private_key()
    good = [(b"first", sign(key, b"first")), (b"second", sign(key, b"second"))]
    checks = Verifier()

    async def scenario() -> List[Optional[Failure]]:
        public = public_key_text(key)
        return list(
            await asyncio.gather(
                checks.first_failure(public, good),
                checks.first_failure(public, [*good, (b"third", sign(other, b"third"))]),
                checks.first_failure(public, [(b"forged", sign(key, b"original"))]),
                checks.first_failure(public, [(b"x", "ed25519 not-base64!")]),
            )
        )

    try:
        ok, wrong_key, forged, garbled = asyncio.run(scenario())
    finally:
        checks.stop()
    assert ok is None
    assert wrong_key is not None and wrong_key[0] == 2 and "does not match" in str(wrong_key[1])
    assert forged is not None and forged[0] == 0
    assert garbled is not None and garbled[0] == 0


def test_a_batch_of_requests_is_handed_back_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the thread is busy the next requests queue; they are then checked and answered together."""
    entered, release = threading.Event(), threading.Event()
    real = signature_thread.first_failure

    def held(public_key: str, signed: Any) -> Any:
        if signed[0][0] == b"hold":
            entered.set()
            assert release.wait(10)
        return real(public_key, signed)

    monkeypatch.setattr(signature_thread, "first_failure", held)
    key = new_private_key()
    public = public_key_text(key)
    checks = Verifier()

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(checks.first_failure(public, [(b"hold", sign(key, b"hold"))]))
        await loop.run_in_executor(None, entered.wait, 10)
        calls = count_hand_overs(loop)
        bodies = [b"%d" % i for i in range(6)]
        queued = [asyncio.ensure_future(checks.first_failure(public, [(b, sign(key, b))])) for b in bodies]
        await asyncio.sleep(0.05)  # all six queued behind the held one
        release.set()
        assert await first is None
        assert await asyncio.gather(*queued) == [None] * 6
        return len(calls)

    try:
        assert asyncio.run(scenario()) <= 2  # the held request's answer, then the six at once
    finally:
        checks.stop()


def test_an_unexpected_failure_fails_that_request_and_the_thread_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    real = signature_thread.first_failure

    def flaky(public_key: str, signed: Any) -> Any:
        if signed[0][0] == b"boom":
            raise RuntimeError("boom")
        return real(public_key, signed)

    monkeypatch.setattr(signature_thread, "first_failure", flaky)
    key = new_private_key()
    checks = Verifier()

    async def scenario() -> None:
        public = public_key_text(key)
        with pytest.raises(RuntimeError, match="boom"):
            await checks.first_failure(public, [(b"boom", sign(key, b"boom"))])
        assert await checks.first_failure(public, [(b"fine", sign(key, b"fine"))]) is None

    try:
        asyncio.run(scenario())
    finally:
        checks.stop()


def test_nothing_is_checked_once_stopped() -> None:
    checks = Verifier()
    checks.stop()
    key = new_private_key()
    with pytest.raises(RuntimeError, match="stopped"):
        asyncio.run(checks.first_failure(public_key_text(key), [(b"late", sign(key, b"late"))]))
