"""What the centre answers, odd or unwelcome, never crashes the agent and is reported truthfully.

A scripted centre on a real socket (fake_centre.FakeCentre) gives the odd answers (a proxy's
502 with a list for a body, ``acknowledged: null``, an enrolment without an agent id); the real
centre gives the refusals (a malformed report, a clock running ahead).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from agent.identity import load_key
from agent.spool import Spool
from tests.agent.daemon_helpers import AgentDaemon, agent_cli, agent_yaml, evidence, spool_malformed, wait_for
from tests.agent.fake_centre import FakeCentre
from tests.centre_process import CentreProcess


@pytest.fixture
def fake() -> Iterator[FakeCentre]:
    f = FakeCentre()
    yield f
    f.stop()


@pytest.mark.parametrize("answer", [[], {"agent_id": None}, {"agent_id": "x"}, "ok"])
def test_enrolment_answer_without_an_agent_id_is_a_clear_error(fake: FakeCentre, tmp_path: Path, answer: Any) -> None:
    fake.answer("/api/v1/enrol", 200, answer)
    result = agent_cli(tmp_path / "a", tmp_path / "agent.yaml", "enroll", "--server", fake.url, "--token", "tse_x")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "enrolment failed" in result.stderr
    assert not (tmp_path / "a" / "enrolment.json").exists()


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (502, ["bad gateway"], "centre refused (502): Bad Gateway"),
        (503, {"message": ["not", "text"], "hint": 7}, "centre refused (503): Service Unavailable"),
        (200, {"acknowledged": None}, "centre answered without a list of acknowledged report ids"),
        (200, {"acknowledged": [1, 2]}, "centre answered without a list of acknowledged report ids"),
        (200, ["acknowledged"], "centre answered 200 with something that is not a JSON object"),
    ],
)
def test_run_once_with_a_malformed_answer_exits_3_and_keeps_the_report(
    fake: FakeCentre, tmp_path: Path, status: int, body: Any, message: str
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, fake, agent_yaml(work, ports=None))
    fake.answer("/api/v1/reports", status, body)
    ran = agent_cli(daemon.state, daemon.config, "run", "--once")
    assert ran.returncode == 3, ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.stderr.strip() == f"tillsyn-agent: {message}"
    assert len(daemon.spool_files()) == 1


def test_the_daemon_lives_through_malformed_answers(
    fake: FakeCentre, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, fake, agent_yaml(work, ports=None, backup=3600))
    fake.answer("/api/v1/reports", 502, ["bad gateway"])
    fake.answer("/api/v1/heartbeat", 502, ["bad gateway"])
    daemons.append(daemon.start())
    wait_for("three delivery attempts", lambda: fake.count("/api/v1/reports") >= 3, 20, daemon)
    assert "delivery failed, retrying" in daemon.text() and "centre refused (502): Bad Gateway" in daemon.text()
    fake.answer("/api/v1/reports", 200, {"acknowledged": None})
    attempts = fake.count("/api/v1/reports")
    wait_for("three more attempts", lambda: fake.count("/api/v1/reports") >= attempts + 3, 20, daemon)
    assert "without a list of acknowledged report ids" in daemon.text()
    assert "Traceback" not in daemon.text()
    assert len(daemon.spool_files()) == 1
    assert daemon.stop() == 0


def test_a_clock_refusal_is_retried_not_final(centre: CentreProcess, tmp_path: Path) -> None:
    """The node's clock ran an hour ahead for one report: the centre refuses it (400 clock) until
    its own time passes the report's; the report must not be thrown out for good."""
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None))
    spool = Spool(daemon.state / "spool")
    ahead = datetime.now(timezone.utc) + timedelta(hours=1)
    spool.add(load_key(daemon.state), daemon.agent_id, "t", ahead, [evidence(0, ahead)])
    ran = agent_cli(daemon.state, daemon.config, "run", "--once")
    assert ran.returncode == 3, ran.stdout + ran.stderr
    assert "centre refused (400)" in ran.stderr and "in the future" in ran.stderr
    assert [int(p.name[:20]) for p in daemon.spool_files()] == [1, 2]
    assert not (daemon.state / "spool" / "rejected").exists()
    assert daemon.stored() == []


def test_run_once_exits_3_when_the_centre_refused_a_report(centre: CentreProcess, tmp_path: Path) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None))
    spool_malformed(Spool(daemon.state / "spool"), load_key(daemon.state), daemon.agent_id, 1)
    ran = agent_cli(daemon.state, daemon.config, "run", "--once")
    assert ran.returncode == 3, ran.stdout + ran.stderr
    assert "report 2 spooled; delivered 1, 0 waiting in the spool" in ran.stdout
    assert "1 report(s) refused by the centre for good, kept in spool/rejected" in ran.stdout
    assert [r["seq"] for r in daemon.stored()] == [2]


def test_run_once_enforces_the_spool_bounds(centre: CentreProcess, tmp_path: Path) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None, extra="spool: {max_age: 3600}\n"))
    spool = Spool(daemon.state / "spool")
    old = spool.add(load_key(daemon.state), daemon.agent_id, "t", datetime.now(timezone.utc), [])
    aged = time.time() - 7200
    os.utime(old.path, (aged, aged))
    ran = agent_cli(daemon.state, daemon.config, "run", "--once")
    assert ran.returncode == 0, ran.stderr
    assert [r["seq"] for r in daemon.stored()] == [2]
    assert json.loads((daemon.state / "spool" / "dropped.json").read_text()) == {"count": 1, "last_seq": 1}
