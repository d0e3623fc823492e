"""Evaluation after ingest: how long the centre takes to judge what it has acknowledged.

Ingest answers once a report is stored and chained; the evaluator judges the queue
afterwards.  A rate of acknowledgements the evaluator cannot follow is not a rate a
centre can sustain, so after every report phase the load generator waits for the
queue (``/healthz`` ``evaluation_backlog``) to empty and charges the phase for it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Dict

from bench.load_phases import Phase, Sampler

DRAIN_TIMEOUT_S = 900.0


@dataclass
class Drain:
    backlog: int
    """Reports acknowledged but not yet judged when the phase's last answer came."""
    wall_s: float
    centre_cpu_s: float
    database_cpu_s: float

    def end_to_end(self, phase: Phase) -> float:
        """Reports per second from the phase's start until the last one was judged."""
        total = phase.wall_s + self.wall_s
        return phase.ok / total if total else 0.0

    def cpu_ms(self, phase: Phase, key: str) -> float:
        """CPU per report, the phase and its catch-up together."""
        extra = self.centre_cpu_s if key == "centre" else self.database_cpu_s
        return (phase.cpu.get(key, 0.0) + extra) / phase.ok * 1000 if phase.ok else 0.0


def backlog(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
        return int(json.load(answer)["evaluation_backlog"])


def drain(port: int, sample: Sampler) -> Drain:
    """Wait until every acknowledged report is judged; the time and CPU it took."""
    before: Dict[str, float] = sample()
    started = time.perf_counter()
    waiting = first = backlog(port)
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while waiting:
        if time.monotonic() > deadline:
            raise SystemExit(f"{waiting} reports still unjudged {DRAIN_TIMEOUT_S:g} s after the phase")
        time.sleep(0.05)
        waiting = backlog(port)
    wall = time.perf_counter() - started if first else 0.0
    after = sample()
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    database = sum(v for k, v in delta.items() if k.startswith("pg:"))
    return Drain(first, wall, delta.get("centre", 0.0), database)
