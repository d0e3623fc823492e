"""The main loop never waits on the centre, and never spins while a round runs.

A real daemon process against a centre that accepts connections and never answers
(fake_centre.HungCentre): the systemd watchdog stays fed, and SIGTERM ends the agent within
seconds, with the collection that was running spooled.  Against a real centre: a file
event during a long round does not make the loop spin until the round ends.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.agent.daemon_helpers import AgentDaemon, NotifySocket, agent_yaml, wait_for
from tests.agent.fake_centre import FakeCentre, HungCentre, point_at
from tests.centre_process import CentreProcess


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    yield sock
    sock.close()


def _slow_backup(work: Path, seconds: int, heartbeat: int = 5) -> str:
    """agent.yaml with a backup collector whose restic takes ``seconds`` and touches ``work/started``."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "pw").write_text("x")
    restic = work / "restic"
    restic.write_text(f"#!/bin/sh\ntouch {work / 'started'}\nsleep {seconds}\necho '[]'\n")
    restic.chmod(0o755)
    return agent_yaml(work, ports=None, backup=3600, restic_binary=str(restic), heartbeat=heartbeat)


def _trigger(work: Path, n: int) -> None:
    (work / "marker.json").write_text(json.dumps({"finished_at": "2026-11-27T10:00:00Z", "result": "success", "n": n}))


def test_sigterm_against_a_hung_centre_is_quick_and_spools_the_running_round(
    tmp_path: Path, notify: NotifySocket, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    fake, hung = FakeCentre(), HungCentre()
    try:
        daemon = AgentDaemon(work, fake, _slow_backup(work, 3))
        point_at(daemon.state, hung.url)
        daemons.append(daemon.start(NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="4000000"))
        wait_for("READY=1", lambda: notify.with_key("READY"), 30, daemon)
        wait_for("a request held by the hung centre", hung.accepted, 10, daemon)
        # While requests hang (30 s read timeout), the loop still pings the watchdog every 2 s.
        time.sleep(5)
        pings = [t for t, _ in notify.with_key("WATCHDOG")]
        ready_at = notify.with_key("READY")[0][0]
        gaps = [b - a for a, b in zip(pings, pings[1:]) if a >= ready_at] + [time.monotonic() - pings[-1]]
        assert max(gaps) < 4.0, f"watchdog gaps {gaps} reach WATCHDOG_USEC while the centre hangs"
        # A collection is running (its restic sleeps 3 s) when the stop comes: it is waited for and spooled.
        (work / "started").unlink()
        _trigger(work, 2)
        wait_for("the second round's restic", (work / "started").exists, 10, daemon)
        assert daemon.proc is not None
        stopped = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.proc.wait(15) == 0, "SIGTERM not honoured within 15 s (TimeoutStopSec is 30 s)"
        daemon.proc = None
        assert time.monotonic() - stopped < 15
    finally:
        hung.stop()
        fake.stop()
    assert [seq for seq, _ in daemon.rounds()] == [1, 2]
    assert [int(p.name[:20]) for p in daemon.spool_files()] == [1, 2]
    assert notify.with_key("STOPPING")


def test_no_busy_loop_while_a_triggered_collector_waits_for_the_running_round(
    centre: CentreProcess, tmp_path: Path, notify: NotifySocket, daemons: List[AgentDaemon]
) -> None:
    """Every turn of the loop sends one WATCHDOG=1: counting them counts the turns."""
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, _slow_backup(work, 4, heartbeat=60))
    daemons.append(daemon.start(NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="20000000"))
    wait_for("report 1 delivered", daemon.stored, 30, daemon)
    (work / "started").unlink()
    _trigger(work, 1)
    wait_for("the triggered round's restic", (work / "started").exists, 10, daemon)
    began = time.monotonic()
    _trigger(work, 2)  # the backup collector is due again while its round still runs (4 s)
    time.sleep(max(0.0, began + 3.5 - time.monotonic()))
    # From 1.5 s (the 1 s debounce is over) to 3.5 s the round runs and nothing else happens.
    turns = [t for t, _ in notify.with_key("WATCHDOG") if began + 1.5 <= t <= began + 3.5]
    assert len(turns) <= 3, f"{len(turns)} turns of the loop in 2 s while waiting for the round"
    wait_for("the waiting trigger's own round", lambda: len(daemon.rounds()) == 3, 20, daemon)
    assert daemon.stop() == 0
