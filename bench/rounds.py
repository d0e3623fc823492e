"""How many reports a node sends, and how late or early each collector runs: the agent's
``Schedule`` driven over a simulated day on a virtual clock, at the shipped ``config/agent.yaml``.

No collector runs and no time passes: the loop asks ``Schedule.take_due`` exactly as the daemon's
turn does, at each time the schedule says it may have to start a round (``wake_times``), and
records every round (one report). ``--round-s`` models how long a round runs (the daemon starts no
round while one runs). No file events or quick-check changes are simulated: those add a triggered
round each.

All nodes start together (the worst case: a fleet booting at once after a power cut); the peak
is the largest number of reports the fleet starts within one second in the last simulated hour.

    .venv/bin/python -m bench.rounds                                   # 100 nodes, one day each
    git show 492ebec:agent/schedule.py > old_schedule.py
    .venv/bin/python -m bench.rounds --schedule old_schedule.py       # the schedule before rounds

The last line is ``rounds: nodes=… reports_per_node_day=… max_late_s=… max_late_share=…
max_early_s=… peak_per_s=… mean_per_s=…``.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from agent.config import AgentConfig, load

DAY_S = 86400.0
START = 1000.0
"""The virtual clock's start (``time.monotonic`` is some arbitrary number too)."""


@dataclass
class Node:
    rounds: List[Tuple[float, List[str]]] = field(default_factory=list)
    late: Dict[str, float] = field(default_factory=dict)
    """Collector -> the largest (run - previous run - interval), in seconds; negative: early."""
    early: Dict[str, float] = field(default_factory=dict)
    """Collector -> the largest (previous run + interval - run), in seconds."""


def schedule_class(path: Optional[str]) -> Any:
    """``agent.schedule.Schedule``, or the ``Schedule`` of another version of that file."""
    if path is None:
        from agent.schedule import Schedule

        return Schedule
    spec = importlib.util.spec_from_file_location("bench_other_schedule", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"rounds: {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Schedule


def simulate(schedule_cls: Any, config: AgentConfig, seconds: float, round_s: float) -> Node:
    """One node from START for ``seconds``: every round the schedule starts, and each collector's bounds."""
    schedule = schedule_cls()
    enabled = [n for n, c in config.collectors.items() if c.enabled]
    schedule.enable(enabled, START)
    node = Node()
    last: Dict[str, float] = {}
    now, end = START, START + seconds
    while now < end:
        names = schedule.take_due(config, now, set())
        for name in names:
            if name in last:
                off = now - last[name] - config.collectors[name].interval
                node.late[name] = max(node.late.get(name, off), off)
                node.early[name] = max(node.early.get(name, -off), -off)
            last[name] = now
        if names:
            node.rounds.append((now, names))
        following = max(min(schedule.wake_times(now)), now + (round_s if names else 0.0))
        if following <= now:
            raise RuntimeError(f"the schedule asks for a round at {following} but started none at {now}")
        now = following
    return node


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/agent.yaml", help="agent.yaml (default: the shipped one)")
    parser.add_argument("--schedule", help="another version of agent/schedule.py to drive (default: this one)")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--round-s", type=float, default=0.0, help="how long each round runs (default 0)")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.days <= 0 or args.round_s < 0:
        parser.error("--nodes must be at least 1, --days more than 0, --round-s at least 0")
    config = load(Path(args.config), required=True)
    cls = schedule_class(args.schedule)
    random.seed(args.seed)
    seconds = args.days * DAY_S
    nodes = [simulate(cls, config, seconds, args.round_s) for _ in range(args.nodes)]

    per_day = [len(n.rounds) / args.days for n in nodes]
    late = max(max(n.late.values()) for n in nodes)
    early = max(max(n.early.values()) for n in nodes)
    share = max(max(n.late[c] / config.collectors[c].interval for c in n.late) for n in nodes)
    last_hour = Counter(int(t) for n in nodes for t, _ in n.rounds if t >= START + seconds - 3600)
    peak = max(last_hour.values())
    mean = sum(last_hour.values()) / 3600
    sizes = Counter(len(names) for n in nodes for _, names in n.rounds)
    print(f"collectors enabled: {sum(c.enabled for c in config.collectors.values())}; jitter {config.jitter}")
    print("collectors per report (count of reports): " + ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items())))
    for name, conf in sorted(config.collectors.items()):
        if conf.enabled:
            latest = max(n.late.get(name, 0.0) for n in nodes)
            earliest = -max(n.early.get(name, 0.0) for n in nodes)
            print(f"  {name:16} interval {conf.interval:5d} s: latest {latest:+7.1f} s, earliest {earliest:+7.1f} s")
    print(
        f"rounds: nodes={args.nodes} reports_per_node_day={sum(per_day) / len(per_day):.1f} "
        f"max_late_s={late:.1f} max_late_share={share:.3f} max_early_s={max(early, 0.0):.1f} "
        f"peak_per_s={peak} mean_per_s={mean:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
