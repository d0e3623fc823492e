"""The load phases must not charge the client's own garbage collection to the centre."""

from __future__ import annotations

import gc
from typing import Dict, List

import pytest

from bench.load_phases import Phase, _measured


def test_the_clients_heap_is_frozen_for_the_phase_and_only_then() -> None:
    pool = [{"request": i} for i in range(1000)]  # as a pre-signed pool: made before the phase
    seen: List[int] = []

    def body() -> float:
        seen.append(gc.get_freeze_count())
        seen.append(int(gc.isenabled()))
        return 0.0

    def sample() -> Dict[str, float]:
        return {"centre": 0.0}

    assert gc.get_freeze_count() == 0
    phase = _measured(Phase("p"), sample, body)
    assert seen[0] >= len(pool)  # the pool (and the rest of the heap) was frozen
    assert seen[1] == 1  # the collector still runs for what the phase itself makes (frozen, not disabled)
    assert gc.get_freeze_count() == 0  # and unfrozen afterwards
    assert phase.wall_s > 0 and "client" in phase.cpu


def test_the_heap_is_unfrozen_when_the_phase_fails() -> None:
    def body() -> float:
        raise OSError("connection refused")

    with pytest.raises(OSError):
        _measured(Phase("p"), lambda: {}, body)
    assert gc.get_freeze_count() == 0
