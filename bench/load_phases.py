"""Timed phases of the load generator: closed loop (peak rate) and open loop (a fixed rate).

Each node's messages go out in sequence order: a per-node lock holds a message
until the node's previous one is answered, as a real agent's spool does.  In the
open loop a request's latency counts from the moment it was *due*, so a server
that falls behind is charged for the queue it builds (no coordinated omission).

The client's own heap (pre-signed request pools, kept answers) is frozen out of Python's cyclic
collector for the length of a phase: a full collection walked it for 34-110 ms on a 2-core machine,
a stall of the client that the open loop would charge to the centre as latency (it set the p99 of
a heartbeat phase, 55 ms against 16-22 ms without it).
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from bench.load_http import Connection, Request

TIMEOUT_S = 30.0
Sampler = Callable[[], Dict[str, float]]


@dataclass
class Phase:
    name: str
    sent: int = 0
    wall_s: float = 0.0
    latencies: List[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    answers: List[Tuple[Request, int, bytes]] = field(default_factory=list)
    cpu: Dict[str, float] = field(default_factory=dict)
    exhausted: bool = False

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def rate(self) -> float:
        return self.ok / self.wall_s if self.wall_s else 0.0

    def pct(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000


async def exchange(free: List[Connection], host: str, port: int, data: bytes) -> Tuple[int, bytes]:
    """One request on a kept-alive connection from ``free`` (a new one when none is), given back
    afterwards; a request that failed is answered ``(0, the error)``."""
    conn = free.pop() if free else Connection(host, port)
    try:
        status, body = await asyncio.wait_for(conn.send(data), TIMEOUT_S)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as err:
        conn.close()
        status, body = 0, repr(err).encode()
    free.append(conn)
    return status, body


class _Run:
    def __init__(self, phase: Phase, host: str, port: int, nodes: int, keep: bool) -> None:
        self.phase, self.host, self.port, self.keep = phase, host, port, keep
        self.locks = [asyncio.Lock() for _ in range(nodes)]
        self.free: List[Connection] = []

    async def one(self, request: Request, due: float) -> None:
        lock = self.locks[request.agent] if request.agent >= 0 else None
        if lock is not None:
            await lock.acquire()
        try:
            status, body = await exchange(self.free, self.host, self.port, request.data)
        finally:
            if lock is not None:
                lock.release()
        self.phase.latencies.append(time.perf_counter() - due)
        self.phase.statuses[status] += 1
        if self.keep or status != 200:
            self.phase.answers.append((request, status, body))

    def close(self) -> None:
        for conn in self.free:
            conn.close()


def _measured(phase: Phase, sample: Sampler, body: Callable[[], float]) -> Phase:
    gc.collect()
    gc.freeze()  # what exists now is not walked again during the phase (see the module's docs)
    try:
        before = sample()
        started = time.perf_counter()
        body()
        phase.wall_s = time.perf_counter() - started
    finally:
        gc.unfreeze()
    client = time.process_time()  # before sampling, which itself costs this process CPU
    after = {**sample(), "client": client}
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    phase.cpu = {k: v for k, v in delta.items() if not k.startswith("pg:")}
    phase.cpu["database"] = sum(v for k, v in delta.items() if k.startswith("pg:"))
    return phase


def closed_loop(
    name: str,
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    nodes: int,
    concurrency: int,
    duration_s: float,
    sample: Sampler,
    keep: bool = False,
) -> Phase:
    """``concurrency`` clients, each sending its next request as soon as the last is answered."""
    phase = Phase(name)

    async def main() -> float:
        run = _Run(phase, host, port, nodes, keep)
        deadline = time.perf_counter() + duration_s
        queue = iter(requests)

        async def worker() -> None:
            while time.perf_counter() < deadline:
                request = next(queue, None)
                if request is None:
                    phase.exhausted = True
                    return
                phase.sent += 1
                await run.one(request, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.close()
        return 0.0

    return _measured(phase, sample, lambda: asyncio.run(main()))


def open_loop(
    name: str,
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    nodes: int,
    rate: float,
    duration_s: float,
    sample: Sampler,
    keep: bool = False,
) -> Phase:
    """One request every ``1/rate`` seconds, whatever the answers do."""
    phase = Phase(name)

    async def main() -> float:
        run = _Run(phase, host, port, nodes, keep)
        tasks = []
        start = time.perf_counter()
        for k, request in enumerate(requests):
            due = start + k / rate
            if due - start >= duration_s:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            phase.sent += 1
            tasks.append(asyncio.ensure_future(run.one(request, due)))
        else:
            phase.exhausted = True
        await asyncio.gather(*tasks)
        run.close()
        return 0.0

    return _measured(phase, sample, lambda: asyncio.run(main()))


def sequential(host: str, port: int, datas: Sequence[bytes], concurrency: int = 8) -> List[Tuple[int, bytes]]:
    """Send untimed requests (enrolment, redelivery) and return every answer in order."""
    out: List[Optional[Tuple[int, bytes]]] = [None] * len(datas)

    async def main() -> None:
        queue = iter(enumerate(datas))

        async def worker() -> None:
            conn = Connection(host, port)
            for i, data in queue:
                out[i] = await asyncio.wait_for(conn.send(data), TIMEOUT_S)
            conn.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(main())
    return [answer for answer in out if answer is not None]
