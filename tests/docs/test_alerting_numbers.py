"""Numbers in docs/alerting.md that the code or a benchmark decides, checked against them."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import yaml

from agent.config import AgentConfig
from agent.uplink.pace import Link

ROOT = Path(__file__).resolve().parents[2]
ALERTING = (ROOT / "docs" / "alerting.md").read_text()


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start : end if end > 0 else None]


def test_how_fast_names_the_shipped_power_poll_and_the_measured_section() -> None:
    shipped = yaml.safe_load((ROOT / "config" / "agent.yaml").read_text())
    poll = shipped["collectors"]["power"]["poll"]
    section = _section(ALERTING, "### How fast")
    assert f"`power: poll: {poll}`" in section and f"every {poll} s" in section
    assert "330" not in section  # the figure from before the probe existed
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text()
    assert "## Alert latency" in benchmarks and "bench/alert_latency.py" in section


def test_the_agent_beats_at_the_smaller_of_its_interval_and_the_centres(tmp_path: Path) -> None:
    assert "the agent sends heartbeats at the **smaller** of that and its own" in " ".join(ALERTING.split())
    for own, asked, expected in ((60, 30, 30), (30, 60, 30), (45, None, 45)):
        link = cast(Any, Link.__new__(Link))
        link.enrolment = SimpleNamespace(heartbeat_interval=asked)
        link.state = tmp_path  # configure() also reads the privacy setting (M13) from the state directory
        config = AgentConfig(source=None, command_timeout=10.0, collectors={}, heartbeat_interval=own)
        Link.configure(link, config)
        assert link.heartbeat_every == expected, (own, asked)
    assert re.search(r"180.192 s", ALERTING)  # 3 x 60 s, + duty_interval_s 10 + dispatch_interval_s 2
