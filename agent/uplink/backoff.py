"""Exponential backoff with full jitter (so a fleet does not retry in lock-step after an outage)."""

from __future__ import annotations

import random
from typing import Callable


class Backoff:
    def __init__(self, minimum: float = 1.0, maximum: float = 300.0, rand: Callable[[], float] = random.random) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.failures = 0
        self.rand = rand

    def failed(self) -> float:
        """Record a failure; the delay to wait before the next try."""
        self.failures += 1
        ceiling = min(self.maximum, self.minimum * (2 ** min(self.failures - 1, 30)))
        return float(max(self.minimum, ceiling * self.rand()))

    def succeeded(self) -> None:
        self.failures = 0
