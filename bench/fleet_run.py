"""The fleet simulation's timed phase: every planned request sent when it is due (an open loop).

A request's latency counts from the moment it was due, so a centre that falls behind is charged
for the queue it builds. Each node's requests go out one at a time in its order (a per-node lock,
as an agent's single uplink), on a pool of kept-alive connections. New nodes enrol when due; what
they send afterwards cannot be signed before (the centre gives them their id), so it is signed
when due, the only signing in the timed phase (a few nodes; it shows in the client's CPU).

A sampler thread reads the centre's evaluation backlog (``/healthz``) and the CPU and memory of
the centre's processes, its database's backends and this client every few seconds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Dict, List, Optional, Tuple, cast

from bench.fleet_plan import ENROL, HEARTBEAT, KINDS, REPORT, Fleet, Item, Planner, rounds
from bench.load_http import Connection, Request
from bench.load_nodes import Node
from bench.load_phases import exchange
from bench.load_server import machine_busy_s, proc_cpu_s

MAX_CONNECTIONS = 512
SAMPLE_S = 5.0


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Sample:
    at: float  # s since the timed phase's start
    backlog: int
    cpu: Dict[str, float]
    rss: Dict[str, int]


class Sampler(threading.Thread):
    """Every ``SAMPLE_S``: the backlog, CPU seconds so far and resident memory (KiB)."""

    def __init__(self, base_url: str, centre_pids: Callable[[], List[int]], db_pids: Callable[[], List[int]]) -> None:
        super().__init__(name="fleet-sampler", daemon=True)
        self.base_url, self.centre_pids, self.db_pids = base_url, centre_pids, db_pids
        self.samples: List[Sample] = []
        self.errors: List[str] = []
        self.start_at = time.monotonic()
        self.stopping = threading.Event()

    def backlog(self) -> int:
        with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=10) as answer:
            return int(json.load(answer)["evaluation_backlog"])

    def take(self) -> Sample:
        centre, db = self.centre_pids(), self.db_pids()
        try:
            waiting = self.backlog()
        except (OSError, ValueError, KeyError) as err:
            self.errors.append(repr(err))
            waiting = -1
        cpu = {f"centre:{p}": proc_cpu_s(p) for p in centre}
        cpu.update({f"db:{p}": proc_cpu_s(p) for p in db})
        cpu["machine"] = machine_busy_s()
        cpu["client"] = time.process_time()
        rss = {
            "centre": sum(rss_kib(p) for p in centre),
            "db": sum(rss_kib(p, "RssAnon") for p in db),
            "client": rss_kib(os.getpid()),
        }
        return Sample(time.monotonic() - self.start_at, waiting, cpu, rss)

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_S):
            self.samples.append(self.take())

    def stop(self) -> None:
        self.stopping.set()
        self.join(SAMPLE_S * 3)


@dataclass
class Outcome:
    latencies: Dict[int, List[Tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    """kind -> (due s, latency s)."""
    statuses: Dict[int, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    sent_in_window: Counter[int] = field(default_factory=Counter)
    ok_in_window: Counter[int] = field(default_factory=Counter)
    report_answers: List[Tuple[Request, int, bytes]] = field(default_factory=list)
    heartbeat_acked: Dict[int, int] = field(default_factory=dict)
    """node -> the highest heartbeat sequence number acknowledged."""
    refused: List[str] = field(default_factory=list)
    deviations: List[Tuple[str, float]] = field(default_factory=list)
    """(agent id, monotonic moment its first deviating report was due)."""
    late_s: float = 0.0
    """The most the client itself started a request after it was due (its own lag)."""
    signed_in_phase: int = 0


class Run:
    def __init__(
        self,
        host: str,
        port: int,
        fleet: Fleet,
        planner: Planner,
        spool_fd: int,
        window: Tuple[float, float],
        enrol_requests: Dict[int, bytes],
    ) -> None:
        self.host, self.port, self.fleet, self.planner, self.fd = host, port, fleet, planner, spool_fd
        self.window = window
        self.enrol_requests = enrol_requests
        self.by_index = {n.index: n for n in [*fleet.nodes, *fleet.new_nodes]}
        self.locks: Dict[int, asyncio.Lock] = {}
        self.free: List[Connection] = []
        self.out = Outcome()
        self.start = 0.0
        self.tasks: List[asyncio.Future[None]] = []

    def lock(self, node: int) -> asyncio.Lock:
        found = self.locks.get(node)
        if found is None:
            found = self.locks[node] = asyncio.Lock()
        return found

    async def send(self, kind: int, request: Request, due: float) -> Tuple[int, bytes]:
        async with self.lock(request.agent):
            status, body = await exchange(self.free, self.host, self.port, request.data)
        latency = time.monotonic() - (self.start + due)
        out = self.out
        out.latencies[kind].append((due, latency))
        out.statuses[kind][status] += 1
        inside = self.window[0] <= due < self.window[1]
        if inside:
            out.sent_in_window[kind] += 1
            if status == 200:
                out.ok_in_window[kind] += 1
        if kind == REPORT:  # what the ledger checks, without the request's bytes
            out.report_answers.append((Request(b"", request.agent, request.report_id), status, body))
        elif status != 200:
            out.refused.append(f"{KINDS[kind]} {status} {body[:200].decode(errors='replace')}")
        elif kind == HEARTBEAT:
            seq = int(request.report_id)
            if seq > out.heartbeat_acked.get(request.agent, 0):
                out.heartbeat_acked[request.agent] = seq
        return status, body

    async def planned(self, item: Item) -> None:
        data = os.pread(self.fd, item.length, item.offset)
        node = self.by_index[item.node]
        if item.deviation:
            self.out.deviations.append((node.agent_id, self.start + item.due))
        await self.send(item.kind, Request(data, item.node, item.ident), item.due)

    async def enrol(self, node: Node, due: float) -> None:
        status, body = await self.send(ENROL, Request(self.enrol_requests[node.index], node.index), due)
        if status != 200:
            return
        node.agent_id = json.loads(body)["agent_id"]
        total = self.planner.total
        events: List[Tuple[float, int, Optional[List[str]]]] = [
            (at, REPORT, names) for at, names in rounds(self.planner.config, due, total)
        ]
        beat = due
        while beat < total:
            events.append((beat, HEARTBEAT, None))
            beat += self.planner.config.heartbeat_interval
        events.sort(key=lambda e: e[0])
        for at, kind, names in events:
            self.tasks.append(asyncio.ensure_future(self.unsigned(node, at, kind, names)))

    async def unsigned(self, node: Node, due: float, kind: int, names: Optional[List[str]]) -> None:
        delay = self.start + due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if kind == REPORT and names is not None and not any(n in self.planner.by_name for n in names):
            return
        request = self.planner.sign(node, due, kind, names, False, due)
        self.out.signed_in_phase += 1
        await self.send(kind, request, due)

    async def main(self, start: float) -> None:
        self.start = start
        slots = asyncio.Semaphore(MAX_CONNECTIONS)

        async def bounded(coro: Awaitable[None]) -> None:
            async with slots:
                await coro

        timeline: List[Tuple[float, int, object]] = [(i.due, i.order, i) for i in self.fleet.items]
        timeline += [(at, -1, node) for node in self.fleet.new_nodes for at in [self.fleet.new_at[node.index]]]
        timeline.sort(key=lambda e: (e[0], e[1]))
        for due, _, what in timeline:
            delay = start + due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.out.late_s = max(self.out.late_s, -delay)
            coro = self.planned(what) if isinstance(what, Item) else self.enrol(cast(Node, what), due)
            self.tasks.append(asyncio.ensure_future(bounded(coro)))
        await asyncio.sleep(max(0.0, start + self.planner.total - time.monotonic()))
        while self.tasks:
            pending, self.tasks = self.tasks, []
            await asyncio.gather(*pending)
        for conn in self.free:
            conn.close()


def timed(run: Run, start_wall: float) -> Outcome:
    """Run the timed phase starting at the wall-clock moment ``start_wall`` (the plan's time zero)."""
    gc.collect()
    gc.freeze()  # the pre-built plan is not walked by the collector during the phase
    try:
        wait = start_wall - time.time()
        if wait > 0:
            time.sleep(wait)
        asyncio.run(run.main(time.monotonic()))
    finally:
        gc.unfreeze()
    return run.out
