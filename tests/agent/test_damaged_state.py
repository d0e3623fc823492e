"""Damaged files in the state directory never stop the agent, and numbers never go backwards.

A spool file cut short is set aside (``spool/rejected/``, with the reason), logged by name and
reported in heartbeats; the counters and the status are rebuilt.  Real daemon and centre processes.
"""

from __future__ import annotations

import json
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, List

import pytest

from agent import sequence_numbers
from agent.daemon import Daemon
from agent.identity import load_key
from agent.notify import Notifier
from agent.spool import Spool
from tests.agent.daemon_helpers import AgentDaemon, agent_cli, agent_yaml, evidence, wait_for
from tests.agent.fake_centre import FakeCentre
from tests.centre_process import CentreProcess


def _spool_two_and_cut_the_first(daemon: AgentDaemon) -> Path:
    spool = Spool(daemon.state / "spool")
    key = load_key(daemon.state)
    first = spool.add(key, daemon.agent_id, "t", datetime.now(timezone.utc), [evidence(200)])
    spool.add(key, daemon.agent_id, "t", datetime.now(timezone.utc), [evidence(200)])
    with open(first.path, "r+b") as handle:
        handle.truncate(40)
    return first.path


def test_a_damaged_spool_file_is_set_aside_and_the_others_delivered(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None, backup=3600))
    cut = _spool_two_and_cut_the_first(daemon)
    daemons.append(daemon.start())
    stored = wait_for("reports 2 and 3 stored", lambda: len(daemon.stored()) == 2 and daemon.stored(), 30, daemon)
    assert [r["seq"] for r in stored] == [2, 3]
    rejected = daemon.state / "spool" / "rejected"
    assert (rejected / cut.name).stat().st_size == 40
    reason = json.loads((rejected / f"{1:020d}.reason.json").read_text())["reason"]
    assert reason.startswith(f"damaged in the spool: {cut}: unreadable")
    assert f"spool: {cut.name} could not be loaded, moved to spool/rejected" in daemon.text()
    wait_for(
        "the damaged file in a heartbeat",
        lambda: f"{cut.name} could not be loaded" in str(daemon.node()["health"] or ""),
        15,
        daemon,
    )
    assert daemon.alive()
    assert daemon.stop() == 0


def test_run_once_sets_a_damaged_spool_file_aside(centre: CentreProcess, tmp_path: Path) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None, backup=3600))
    cut = _spool_two_and_cut_the_first(daemon)
    ran = agent_cli(daemon.state, daemon.config, "run", "--once")
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    assert "report 3 spooled; delivered 2, 0 waiting in the spool" in ran.stdout
    assert "1 damaged spool file(s) moved to spool/rejected" in ran.stdout
    assert cut.name in ran.stderr
    assert [r["seq"] for r in daemon.stored()] == [2, 3]


def test_damaged_counters_and_status_are_rebuilt_and_numbers_go_on(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None, backup=3600))
    daemons.append(daemon.start())
    wait_for("report 1 and a heartbeat", lambda: daemon.stored() and daemon.node()["last_heartbeat_seq"], 30, daemon)
    assert daemon.stop() == 0
    beat = daemon.node()["last_heartbeat_seq"]
    before = sequence_numbers.clock_floor()
    garbage = {
        daemon.state / "spool" / "seq.json": b'{"last": ',
        daemon.state / "heartbeat.json": b"\x00\x00\x00",
        daemon.state / "spool" / "dropped.json": b'{"count": "many"}',
        daemon.state / "status.json": b"[1, 2",
    }
    for path, data in garbage.items():
        path.write_bytes(data)
    daemon.start()
    # Numbering goes on from the clock: above anything the centre has, so nothing is refused as a replay.
    stored = wait_for("the next report stored", lambda: len(daemon.stored()) == 2 and daemon.stored(), 30, daemon)
    assert stored[1]["seq"] >= before > stored[0]["seq"]
    wait_for("a heartbeat accepted", lambda: daemon.node()["last_heartbeat_seq"] >= before > beat, 15, daemon)
    log = daemon.text()
    for path in garbage:
        if path.name != "status.json":  # a cache the daemon rewrites, nothing to report
            assert str(path) in log, f"{path.name} not named in the log"
    wait_for("status.json rewritten", lambda: json.loads((daemon.state / "status.json").read_text()), 10, daemon)
    assert json.loads((daemon.state / "spool" / "dropped.json").read_text()) == {"count": 0}
    assert daemon.alive()
    assert daemon.stop() == 0
    shown = agent_cli(daemon.state, daemon.config, "status")
    assert shown.returncode == 0 and "spool depth:    0 (dropped at the bound: 0)" in shown.stdout


def test_counter_files(tmp_path: Path) -> None:
    path = tmp_path / "seq.json"
    assert sequence_numbers.advance(path, "last") == (1, [])
    assert sequence_numbers.advance(path, "last", at_least=7) == (8, [])
    path.write_text("{")
    before = sequence_numbers.clock_floor()
    value, problems = sequence_numbers.advance(path, "last")
    assert value > before and len(problems) == 1 and str(path) in problems[0]
    assert json.loads(path.read_text()) == {"last": value}


def test_damaged_enrolment_is_a_clear_usage_error(tmp_path: Path) -> None:
    fake = FakeCentre()
    try:
        enrolled = agent_cli(tmp_path / "s", tmp_path / "agent.yaml", "enroll", "--server", fake.url, "--token", "t")
    finally:
        fake.stop()
    assert enrolled.returncode == 0, enrolled.stderr
    (tmp_path / "s" / "enrolment.json").write_bytes(b'{"agent_id": "agent-fa')
    result = agent_cli(tmp_path / "s", tmp_path / "agent.yaml", "run", "--once")
    assert result.returncode == 2
    assert "enrolment.json: not readable JSON" in result.stderr and "enrol again" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def enrolled(tmp_path: Path) -> Iterator[Path]:
    """A state directory enrolled with a fake centre (which then answers nothing but 503)."""
    fake = FakeCentre()
    (tmp_path / "agent.yaml").write_text(agent_yaml(tmp_path, ports=None, heartbeat=3600))
    result = agent_cli(tmp_path / "state", tmp_path / "agent.yaml", "enroll", "--server", fake.url, "--token", "t")
    assert result.returncode == 0, result.stderr
    fake.answer("/api/v1/heartbeat", 503, {"error": "unavailable"})
    yield tmp_path
    fake.stop()


def test_an_unexpected_exception_in_a_step_is_logged_and_the_loop_turns_on(enrolled: Path) -> None:
    """In process, to make one step fail: the loop logs it, reports it and keeps turning;
    KeyboardInterrupt and SystemExit are not swallowed."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    daemon = Daemon(enrolled / "state", enrolled / "agent.yaml", True, notifier=Notifier({}))
    calls: List[float] = []

    def broken(now: float) -> None:
        calls.append(now)
        if len(calls) == 3:
            daemon.stopping = True
        daemon.wake.set()  # something to do at once (else the next turn comes when something is due)
        raise RuntimeError("disk on fire")

    daemon._bounds = broken  # type: ignore[method-assign]
    give_up = threading.Timer(30, lambda: setattr(daemon, "stopping", True) or daemon.wake.set())
    give_up.start()  # a loop that never calls the step again must not hang the test
    try:
        assert daemon.run() == 0
    finally:
        give_up.cancel()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert len(calls) == 3, "the loop stopped turning after the first failure"
    assert "spool bounds: unexpected RuntimeError: disk on fire" in daemon.recent.items()

    def interrupted(now: float) -> None:
        raise KeyboardInterrupt

    again = Daemon(enrolled / "state", enrolled / "agent.yaml", True, notifier=Notifier({}))
    again._bounds = interrupted  # type: ignore[method-assign]
    try:
        with pytest.raises(KeyboardInterrupt):
            again.run()
    finally:
        again.watcher.stop()
        again.link.close()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
