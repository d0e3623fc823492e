"""The fleet simulation at a tiny scale: it runs end to end against a real centre, and its last
line carries the figures a rerun is compared by, with nothing lost or stored twice."""

from __future__ import annotations

import random
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.config import load as load_agent_config
from bench import fleet
from bench.fleet_plan import HEARTBEAT, REPORT, Planner, rounds

ROOT = Path(__file__).resolve().parents[2]
LAST = re.compile(
    r"^fleet: nodes=(\d+) hb_per_s=([\d.]+) reports_per_s=([\d.]+) p99_ms=([\d.]+) "
    r"backlog=(\d+) lost=(\d+) duplicated=(\d+)$"
)


def test_rounds_follow_the_agents_schedule_and_are_not_in_step() -> None:
    config = load_agent_config(ROOT / "config" / "agent.yaml", required=True)
    random.seed(3)
    first = rounds(config, -500.0, 3600.0)
    second = rounds(config, -20.0, 3600.0)
    assert first[0] == (-500.0, sorted(n for n, c in config.collectors.items() if c.enabled))
    assert [at for at, _ in first] != [at for at, _ in second]
    # every collector comes round again within its interval plus the agent's jitter
    for name, collector in config.collectors.items():
        times = [at for at, names in first if name in names]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert gaps and max(gaps) <= collector.interval * (1 + config.jitter) + 1e-6


def test_a_silent_node_sends_no_heartbeat_while_silent_and_its_reports_afterwards() -> None:
    config = load_agent_config(ROOT / "config" / "agent.yaml", required=True)
    random.seed(5)
    planner = Planner(config, [], datetime.now(timezone.utc), 1800.0, 0.0, random.Random(5))
    steady = planner.node_plan("steady")
    silent = planner.node_plan("silent")
    beats = [due for due, kind, *_ in silent if kind == HEARTBEAT]
    edges = [0.0, *beats, 1800.0]
    assert max(b - a for a, b in zip(edges, edges[1:])) >= 120  # a stretch of silence
    assert sum(1 for e in steady if e[1] == HEARTBEAT) > len(beats)
    assert all(at <= due for due, kind, _, _, at in silent if kind == REPORT)
    assert [due for due, *_ in silent] == sorted(due for due, *_ in silent)


def test_a_tiny_fleet_runs_and_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code = fleet.main(["--nodes", "20", "--minutes", "0.34", "--warmup", "0"])
    out = capsys.readouterr().out.rstrip("\n").splitlines()
    match = LAST.match(out[-1])
    assert match, out[-1]
    assert match.group(1) == "20"
    assert match.group(6) == "0" and match.group(7) == "0", out[-1]
    assert any("`tillsyn-central verify`" in line for line in out)
    assert code == 0, "\n".join(out)
