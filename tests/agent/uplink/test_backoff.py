"""Exponential backoff with full jitter: bounds, growth, reset."""

from __future__ import annotations

from agent.uplink.backoff import Backoff


def test_ceiling_doubles_up_to_the_maximum() -> None:
    b = Backoff(1.0, 30.0, rand=lambda: 1.0)
    assert [b.failed() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    b.succeeded()
    assert b.failed() == 1.0


def test_jitter_never_below_the_minimum() -> None:
    b = Backoff(0.5, 300.0, rand=lambda: 0.0)
    assert all(b.failed() == 0.5 for _ in range(40))  # and 2**n does not overflow after many failures


def test_real_jitter_stays_within_bounds_and_spreads() -> None:
    b = Backoff(1.0, 60.0)
    for _ in range(10):
        b.failed()
    delays = [b.failed() for _ in range(200)]
    assert all(1.0 <= d <= 60.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100  # a fleet does not retry in lock-step
