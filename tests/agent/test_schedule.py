"""The agent's schedule: collectors share rounds (one report each), within their bounds, and triggers run alone.

The schedule is driven on a virtual clock (``bench.rounds.simulate``, as the daemon's turn drives it).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Tuple

from agent.config import AgentConfig, load
from agent.schedule import COALESCE_S, Schedule
from bench.rounds import START, simulate
from collectors import REGISTRY

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "agent.yaml"
DAY = 86400.0


def config_with(tmp_path: Path, intervals: Dict[str, int], jitter: float) -> AgentConfig:
    """An agent.yaml with only these collectors enabled, at these intervals."""
    lines = [f"jitter: {jitter}", "collectors:"]
    lines += [
        f"  {name}: {{interval: {intervals[name]}}}" if name in intervals else f"  {name}: {{enabled: false}}"
        for name in sorted(REGISTRY)
    ]
    path = tmp_path / "agent.yaml"
    path.write_text("\n".join(lines) + "\n")
    return load(path, required=True)


def offsets(config: AgentConfig, rounds: List[Tuple[float, List[str]]]) -> Dict[str, List[float]]:
    """Collector -> each run's time since its previous run, less its interval (negative: early)."""
    last: Dict[str, float] = {}
    found: Dict[str, List[float]] = {}
    for at, names in rounds:
        for name in names:
            if name in last:
                found.setdefault(name, []).append(at - last[name] - config.collectors[name].interval)
            last[name] = at
    return found


def test_the_shipped_collectors_converge_on_one_report_per_round() -> None:
    config = load(SHIPPED, required=True)
    enabled = sorted(n for n, c in config.collectors.items() if c.enabled)
    shortest = min(config.collectors[n].interval for n in enabled)
    pace = [n for n in enabled if config.collectors[n].interval == shortest]
    assert len(pace) == 10, pace  # the shipped file: ten collectors every 300 s
    random.seed(1)
    node = simulate(Schedule, config, DAY, 0.0)
    # Every collector in the first round; in each later one every 300-s collector, in one report.
    assert node.rounds[0][1] == enabled
    assert all(set(pace) <= set(names) for _, names in node.rounds), [r for r in node.rounds if set(pace) - set(r[1])]
    bounds = (DAY / (shortest * (1 + config.jitter)), DAY / shortest + 1)
    assert bounds[0] <= len(node.rounds) <= bounds[1], (len(node.rounds), bounds)
    # The longer intervals ride along: no round of their own.
    for name in enabled:
        runs = sum(name in names for _, names in node.rounds)
        per = config.collectors[name].interval // shortest
        assert len(node.rounds) // per - 1 <= runs <= len(node.rounds) // per + 1, (name, runs)


def test_no_collector_runs_early_or_later_than_jitter_allows() -> None:
    config = load(SHIPPED, required=True)
    for seed in range(5):
        random.seed(seed)
        node = simulate(Schedule, config, DAY / 4, 0.0)
        for name, found in offsets(config, node.rounds).items():
            interval = config.collectors[name].interval
            assert min(found) >= -1e-6, (seed, name, min(found))
            assert max(found) <= config.jitter * interval + 1e-6, (seed, name, max(found))


def test_intervals_that_are_not_multiples_stay_within_bounds(tmp_path: Path) -> None:
    """300 and 450 s: the 450-s collector starts a round itself at the end of its window when none did."""
    config = config_with(tmp_path, {"ports": 300, "sshd": 300, "backup": 450}, jitter=0.1)
    random.seed(7)
    node = simulate(Schedule, config, DAY / 4, 0.0)
    for name, found in offsets(config, node.rounds).items():
        assert min(found) >= -COALESCE_S - 1e-6, (name, min(found))
        assert max(found) <= 0.1 * config.collectors[name].interval + 1e-6, (name, max(found))
    # The two 300-s collectors stay together.
    assert all(("ports" in names) == ("sshd" in names) for _, names in node.rounds)


def test_without_jitter_multiples_meet_exactly(tmp_path: Path) -> None:
    config = config_with(tmp_path, {"ports": 300, "backup": 900, "disk_encryption": 3600}, jitter=0)
    node = simulate(Schedule, config, 7200.0, 0.0)
    assert [at - START for at, _ in node.rounds] == [300.0 * k for k in range(24)]
    assert [names for _, names in node.rounds[:4]] == [
        ["backup", "disk_encryption", "ports"],
        ["ports"],
        ["ports"],
        ["backup", "ports"],
    ]
    assert node.rounds[12][1] == ["backup", "disk_encryption", "ports"]


def test_nodes_started_together_drift_apart() -> None:
    """The jitter is each node's phase: ten nodes booted at once do not keep collecting in step."""
    config = load(SHIPPED, required=True)
    random.seed(3)
    starts = [simulate(Schedule, config, 3600.0, 0.0).rounds[10][0] for _ in range(10)]
    assert len(set(starts)) == 10, starts
    assert max(starts) - min(starts) > 10.0, starts


def test_a_round_waits_for_the_running_one() -> None:
    """A round that runs long (90 s) delays the next, which still holds every 300-s collector."""
    config = load(SHIPPED, required=True)
    random.seed(4)
    node = simulate(Schedule, config, DAY / 8, 90.0)
    pace = {n for n, c in config.collectors.items() if c.enabled and c.interval == 300}
    assert all(pace <= set(names) for _, names in node.rounds)


def test_a_trigger_runs_its_collectors_alone_and_keeps_their_place(tmp_path: Path) -> None:
    config = config_with(tmp_path, {"ports": 300, "backup": 300, "power": 300}, jitter=0.1)
    schedule = Schedule()
    schedule.enable(["ports", "backup", "power"], 0.0)
    assert schedule.take_due(config, 0.0, set()) == ["backup", "ports", "power"]
    due, ready = dict(schedule.due), dict(schedule.ready)
    # A file event (debounced 1 s) and a quick check's change (at once): each runs alone.
    schedule.trigger({"backup"}, 100.0)
    assert schedule.take_triggered(100.5) == set()
    taken = schedule.take_triggered(101.0)
    assert schedule.take_due(config, 101.0, taken) == ["backup"]
    schedule.trigger({"power"}, 150.0, at_once=True)
    assert schedule.take_due(config, 150.0, schedule.take_triggered(150.0)) == ["power"]
    assert (schedule.due, schedule.ready) == (due, ready)
    # Their regular round comes as it would have, with all three.
    at = min(schedule.wake_times(150.0))
    assert at == min(due.values())
    assert schedule.take_due(config, at - 1, set()) == []
    assert schedule.take_due(config, at, set()) == ["backup", "ports", "power"]


def test_a_trigger_takes_along_a_round_due_within_seconds(tmp_path: Path) -> None:
    config = config_with(tmp_path, {"ports": 300, "backup": 300}, jitter=0)
    schedule = Schedule()
    schedule.enable(["ports", "backup"], 0.0)
    schedule.take_due(config, 0.0, set())
    schedule.trigger({"backup"}, 297.0, at_once=True)
    assert schedule.take_due(config, 297.0, schedule.take_triggered(297.0)) == ["backup", "ports"]
    assert schedule.due == {"ports": 597.0, "backup": 597.0}


def test_enable_runs_every_collector_in_the_next_round(tmp_path: Path) -> None:
    """A reload: every enabled collector, newly enabled or not, is due at once, then on its interval."""
    schedule = Schedule()
    schedule.enable(["ports"], 0.0)
    assert schedule.take_due(config_with(tmp_path, {"ports": 300}, jitter=0), 0.0, set()) == ["ports"]
    config = config_with(tmp_path, {"ports": 300, "backup": 900}, jitter=0)
    schedule.enable(["ports", "backup"], 50.0)
    assert schedule.take_due(config, 50.0, set()) == ["backup", "ports"]
    assert schedule.due == {"ports": 350.0, "backup": 950.0}
