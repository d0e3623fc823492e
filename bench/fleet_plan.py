"""The fleet simulation's plan: when each simulated node sends what, signed before the timed phase.

Every node follows the shipped ``config/agent.yaml``: a heartbeat every ``heartbeat_interval`` s
at its own phase, and collection rounds as the agent's own :class:`agent.schedule.Schedule`
decides them (the bench calls it, so it follows changes to it), run on a virtual clock per
node that started at a random moment up to one longest interval before the run, so the fleet
is not in step. A round's report
carries the evidence of the collectors in it, from a real ``tillsyn-agent collect --json``.

Behaviours (shares of the fleet, drawn with a seeded generator): *steady* (most), *deviating*
(its ports evidence starts showing telnet on all addresses at a random moment and stays so:
the deviation whose notification is timed), *flapping* (the same deviation on and off in every
round with ports), *silent* (no heartbeat for 2-6.5 minutes; the reports of that stretch are
delivered when it ends, as an agent's spool does) and *new* (enrols during the run).

Requests are written to a spool file in the order they are due, so tens of thousands of nodes
do not hold gigabytes of signed reports in memory; only their place in the file is kept.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import BinaryIO, Dict, List, Optional, Sequence, Tuple

from agent.config import AgentConfig
from agent.schedule import Schedule
from bench.load_http import Request
from bench.load_nodes import Node
from evidence.model import Evidence
from tests.e2e.alert_helpers import TELNET

SHARES = {"deviating": 0.02, "flapping": 0.01, "silent": 0.01}
NEW_SHARE = 0.002
SILENT_S = (120.0, 390.0)

HEARTBEAT, REPORT, ENROL = 0, 1, 2
KINDS = ("heartbeat", "report", "enrol")


@dataclass(frozen=True)
class Item:
    """One pre-built request: due ``due`` s after the timed phase's start, at ``offset`` in the spool."""

    due: float
    order: int
    kind: int
    node: int
    offset: int
    length: int
    ident: str  # a report's id, a heartbeat's sequence number
    deviation: bool = False  # the node's first deviating report: its notification is timed


@dataclass
class Fleet:
    nodes: List[Node]
    behaviour: Dict[int, str]
    items: List[Item] = field(default_factory=list)
    new_nodes: List[Node] = field(default_factory=list)
    new_at: Dict[int, float] = field(default_factory=dict)


def templates(template: Sequence[Evidence]) -> Tuple[Dict[str, Evidence], Optional[Evidence]]:
    """The evidence by collector, and the ports evidence showing telnet (None without ports)."""
    by_name = {record.collector: record for record in template}
    ports = by_name.get("ports")
    if ports is None:
        return by_name, None
    observed = dict(ports.observed)
    observed["sockets"] = [*observed.get("sockets", []), TELNET]
    return by_name, replace(ports, observed=observed)


def rounds(config: AgentConfig, start: float, end: float) -> List[Tuple[float, List[str]]]:
    """The agent's collection rounds from its start at ``start`` until ``end`` (virtual seconds)."""
    schedule = Schedule()
    schedule.enable([n for n, c in config.collectors.items() if c.enabled], start)
    out = []
    now = start
    while now < end:
        names = schedule.take_due(config, now, set())
        if names:
            out.append((now, names))
        now = max(now, min(schedule.wake_times(now)))
    return out


def behaviours(count: int, rng: random.Random) -> Dict[int, str]:
    """Node index -> behaviour; each special share at least one node."""
    out = dict.fromkeys(range(count), "steady")
    pool = list(range(count))
    rng.shuffle(pool)
    for name, share in SHARES.items():
        for _ in range(max(1, round(count * share))):
            if pool:
                out[pool.pop()] = name
    return out


class Planner:
    """Builds and signs every request of the timed phase into ``spool``."""

    def __init__(
        self,
        config: AgentConfig,
        template: Sequence[Evidence],
        t0: datetime,
        total_s: float,
        warmup_s: float,
        rng: random.Random,
    ) -> None:
        self.config, self.t0, self.total, self.warmup, self.rng = config, t0, total_s, warmup_s, rng
        self.by_name, self.deviating = templates(template)
        self.longest = max(c.interval for c in config.collectors.values() if c.enabled) * (1 + config.jitter)
        self.order = 0

    def node_plan(self, behaviour: str) -> List[Tuple[float, int, Optional[List[str]], bool, float]]:
        """(due, kind, collectors or None, deviating, when collected) for one node, in its order of sending."""
        beat_phase = self.rng.uniform(0, self.config.heartbeat_interval)
        start = -self.rng.uniform(0, self.longest)
        events: List[Tuple[float, int, Optional[List[str]], bool, float]] = []
        deviate_at = self.rng.uniform(self.warmup, self.warmup + (self.total - self.warmup) * 0.7)
        flap = False
        for at, names in rounds(self.config, start, self.total):
            if at < 0:
                continue
            bad = False
            if behaviour == "deviating":
                bad = at >= deviate_at
            elif behaviour == "flapping" and "ports" in names:
                flap = not flap
                bad = flap
            events.append((at, REPORT, names, bad, at))
        beat = beat_phase
        while beat < self.total:
            events.append((beat, HEARTBEAT, None, False, beat))
            beat += self.config.heartbeat_interval
        events.sort(key=lambda e: e[0])
        if behaviour == "silent":
            begin = self.rng.uniform(self.warmup, max(self.warmup, self.total * 0.6))
            end = begin + self.rng.uniform(*SILENT_S)
            held: List[Tuple[float, int, Optional[List[str]], bool, float]] = []
            for event in events:
                due, kind = event[0], event[1]
                if begin <= due < end:
                    if kind == REPORT:
                        held.append((min(end, self.total), *event[1:]))
                    continue  # a heartbeat that was not sent is not sent later
                held.append(event)
            events = sorted(held, key=lambda e: e[0])
        return events

    def sign(self, node: Node, due: float, kind: int, names: Optional[List[str]], bad: bool, at: float) -> Request:
        """A heartbeat sent at ``due``, or a report of round ``at`` (s after the start)."""
        if kind == HEARTBEAT:
            return node.heartbeat(self.t0 + timedelta(seconds=due))
        assert names is not None
        records = [
            self.deviating if (name == "ports" and bad and self.deviating is not None) else self.by_name[name]
            for name in names
            if name in self.by_name
        ]
        return node.report(records, self.t0 + timedelta(seconds=at))

    def write(self, fleet: Fleet, spool: BinaryIO) -> None:
        """Plan and sign every enrolled node's requests into ``spool``; ``fleet.items`` in due order."""
        items: List[Item] = []
        for node in fleet.nodes:
            behaviour = fleet.behaviour.get(node.index, "steady")
            timed_deviation = behaviour == "deviating"
            for due, kind, names, bad, at in self.node_plan(behaviour):
                if kind == REPORT and names is not None and not any(n in self.by_name for n in names):
                    continue
                request = self.sign(node, due, kind, names, bad, at)
                first_bad = timed_deviation and bad and names is not None and "ports" in names
                if first_bad:
                    timed_deviation = False
                offset = spool.tell()
                spool.write(request.data)
                items.append(
                    Item(due, self.order, kind, node.index, offset, len(request.data), request.report_id, first_bad)
                )
                self.order += 1
        spool.flush()
        os.fsync(spool.fileno())
        items.sort(key=lambda i: (i.due, i.order))
        fleet.items = items
