"""``tillsyn-agent run`` as a real process against a real centre process.

sd_notify on a socket the test binds itself, per-collector intervals, a hanging
collector, file-event triggers, configuration reload (file change and SIGHUP) and
``tillsyn-agent status`` after the daemon ran.  The daemon helpers are in daemon_helpers.py, the
fixtures (``centre``, ``daemons``) in conftest.py.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import List

from tests.agent.daemon_helpers import (
    AgentDaemon,
    NotifySocket,
    agent_cli,
    agent_yaml,
    wait_for,
)
from tests.centre_process import CentreProcess

# -- sd_notify ------------------------------------------------------------------------------------


def test_sd_notify_ready_status_watchdog_stopping(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    notify = NotifySocket(str(tmp_path / "notify.sock"))
    try:
        # The collection is made slow (a backup tool that sleeps 3 s) so that READY coming
        # before the report is spooled would be seen.
        fake = tmp_path / "restic"
        fake.write_text("#!/bin/sh\nsleep 3\necho '[]'\n")
        fake.chmod(0o755)
        daemon = AgentDaemon(tmp_path / "a", centre, agent_yaml(tmp_path / "a", backup=600, restic_binary=str(fake)))
        (tmp_path / "a" / "pw").write_text("x")
        daemons.append(daemon.start(NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="1000000"))
        started = time.monotonic()
        ready = wait_for("READY=1", lambda: notify.with_key("READY"), 30, daemon)
        # The first report was on disk (or already at the centre) when READY came.
        assert daemon.rounds(), daemon.text()
        assert ready[0][0] - started >= 2.5, "READY before the (3 s) first collection was spooled"
        assert ready[0][1]["READY"] == "1"
        # STATUS lines name the last delivery and the spool depth; after delivery, depth 0.
        delivered = wait_for(
            "a STATUS after delivery",
            lambda: [
                m
                for _, m in notify.with_key("STATUS")
                if "last delivery 20" in m["STATUS"] and "spool depth 0" in m["STATUS"]
            ],
            20,
            daemon,
        )
        assert re.match(r"last delivery \d{4}-\d\d-\d\dT[\d:.]+Z; spool depth 0$", delivered[0]["STATUS"])
        assert daemon.stored(), "STATUS said delivered but the centre has no report"
        # Watchdog pings keep coming (the loop wakes at least every WATCHDOG_USEC/2).
        count = len(notify.with_key("WATCHDOG"))
        time.sleep(3)
        pings = notify.with_key("WATCHDOG")
        assert len(pings) - count >= 3, f"only {len(pings) - count} WATCHDOG=1 in 3 s with WATCHDOG_USEC=1 s"
        gaps = [b[0] - a[0] for a, b in zip(pings[-6:], pings[-5:])]
        assert max(gaps) < 1.0, f"watchdog gaps {gaps} exceed WATCHDOG_USEC"
        daemon.signal(signal.SIGTERM)
        assert daemon.proc is not None and daemon.proc.wait(20) == 0
        stopping = notify.with_key("STOPPING")
        assert stopping and stopping[-1][1]["STOPPING"] == "1"
        last_ping = notify.with_key("WATCHDOG")[-1][0]
        assert stopping[-1][0] >= last_ping
    finally:
        notify.close()


def test_watchdog_for_another_pid_and_abstract_socket(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    name = f"tillsyn-test-{os.getpid()}-{time.monotonic_ns()}"
    notify = NotifySocket("\0" + name)
    try:
        daemon = AgentDaemon(tmp_path / "a", centre, agent_yaml(tmp_path / "a"))
        # WATCHDOG_PID names another process (e.g. a wrapper's): this one must not ping.
        daemons.append(daemon.start(NOTIFY_SOCKET="@" + name, WATCHDOG_USEC="500000", WATCHDOG_PID="1"))
        wait_for("READY=1 on the abstract socket", lambda: notify.with_key("READY"), 30, daemon)
        wait_for(
            "a STATUS after delivery",
            lambda: [m for _, m in notify.with_key("STATUS") if "spool depth 0" in m["STATUS"]],
            20,
            daemon,
        )
        time.sleep(1.5)
        assert notify.with_key("WATCHDOG") == []
        assert daemon.stop() == 0
        assert notify.with_key("STOPPING")
    finally:
        notify.close()


# -- scheduling -----------------------------------------------------------------------------------


def test_intervals_and_a_hanging_collector(centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]) -> None:
    """backup every 10 s hangs (its restic sleeps) and times out after 1 s; ports every hour runs once."""
    work = tmp_path / "a"
    work.mkdir()
    (work / "pw").write_text("x")
    hang = tmp_path / "restic"
    hang.write_text("#!/bin/sh\nexec sleep 300\n")
    hang.chmod(0o755)
    daemon = AgentDaemon(
        work, centre, agent_yaml(work, ports=3600, backup=10, backup_timeout=1, restic_binary=str(hang))
    )
    daemons.append(daemon.start())
    started = time.monotonic()
    wait_for("three backup runs", lambda: daemon.runs_of("backup") >= 3, 45, daemon)
    elapsed = time.monotonic() - started
    # Three runs at 0, 10 and 20 s: not faster than the interval, not much slower either.
    assert 19 <= elapsed <= 35, f"three 10-s rounds took {elapsed:.1f} s"
    assert daemon.runs_of("ports") == 1, daemon.rounds()
    # The hung collector was reported errored, and the other collector of its round was not held back.
    first = wait_for("reports at the centre", lambda: len(daemon.stored()) >= 3 and daemon.stored(), 20, daemon)
    evidence = {e["collector"]: e for e in first[0]["report"]["evidence"]}
    assert evidence["backup"]["status"] == "error"
    assert "timed out after 1 s" in evidence["backup"]["error"]
    assert evidence["ports"]["status"] in ("complete", "partial")
    # Heartbeats kept arriving at the centre the whole time (every 5 s).
    seen = daemon.node()
    assert seen["last_heartbeat_seq"] >= 4, seen
    before = seen["last_heartbeat_seq"]
    wait_for("another heartbeat", lambda: daemon.node()["last_heartbeat_seq"] > before, 10, daemon)
    assert daemon.stop() == 0


# -- file triggers, reload, status ----------------------------------------------------------------


def test_file_trigger_runs_only_that_collector_once_and_status_shows_it(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=3600, backup=3600))
    daemons.append(daemon.start())
    wait_for("the first round", lambda: daemon.runs_of("backup") == 1, 30, daemon)
    assert daemon.rounds()[0][1] == ["backup", "ports"]
    # The backup job writes its marker: the backup collector runs within a few seconds, alone.
    (work / "marker.json").write_text('{"finished_at": "2026-11-27T10:00:00Z", "result": "success"}')
    changed = time.monotonic()
    wait_for("a triggered backup run", lambda: daemon.runs_of("backup") == 2, 5, daemon)
    assert time.monotonic() - changed < 5
    assert daemon.rounds()[-1][1] == ["backup"]
    # A restore-test record is watched too (it is in restore_test_dir, named after the backup).
    (work / "restore.json").write_text('{"tested_at": "2026-11-27T10:00:00Z", "result": "passed"}')
    wait_for("a run triggered by the restore test", lambda: daemon.runs_of("backup") == 3, 5, daemon)
    # The collector reads both files: that must not trigger it again (watchdog reports opens).
    time.sleep(4)
    assert daemon.runs_of("backup") == 3, daemon.rounds()
    assert daemon.runs_of("ports") == 1
    stored = wait_for("three reports stored", lambda: len(daemon.stored()) == 3 and daemon.stored(), 15, daemon)
    backup = {e["collector"]: e for e in stored[-1]["report"]["evidence"]}["backup"]["observed"]["backups"][0]
    assert backup["last_success_at"] == "2026-11-27T10:00:00Z"
    assert backup["restore_test"]["result"] == "passed"
    assert daemon.stop() == 0
    # What `tillsyn-agent status` says after the daemon ran.
    shown = agent_cli(daemon.state, daemon.config, "status")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"agent id:       {daemon.agent_id}" in out
    assert f"server:         {centre.url}" in out
    assert "spool depth:    0 (dropped at the bound: 0)" in out
    assert re.search(r"^last delivery:  \d{4}-\d\d-\d\dT[\d:.]+Z$", out, re.M), out
    assert re.search(r"^last heartbeat: \d{4}-", out, re.M), out
    assert re.search(r"^  backup +(complete|partial) +\d{4}-\d\d-\d\dT[\d:.]+Z [\d.]+ ms$", out, re.M), out
    assert re.search(r"^  ports +(complete|partial) +\d{4}-", out, re.M), out
    assert "power" not in out  # disabled collectors never ran


def test_config_reload_on_change_refusal_and_sighup(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=3600))
    daemons.append(daemon.start())
    wait_for("the first round", lambda: daemon.runs_of("ports") == 1, 30, daemon)
    # A new interval in agent.yaml takes effect without a restart.
    daemon.config.write_text(agent_yaml(work, ports=10))
    wait_for("the reload", lambda: "configuration reloaded" in daemon.text(), 5, daemon)
    runs = daemon.runs_of("ports")
    wait_for("ports on its new 10 s interval", lambda: daemon.runs_of("ports") == runs + 1, 14, daemon)
    # An invalid agent.yaml is refused, logged, and the running configuration stays in force.
    daemon.config.write_text(agent_yaml(work, ports=10, extra="no_such_key: 1\n"))
    wait_for("the refusal", lambda: "new configuration refused" in daemon.text(), 5, daemon)
    assert "no_such_key" in daemon.text().split("new configuration refused")[1].splitlines()[0]
    runs = daemon.runs_of("ports")
    wait_for("ports still on the 10 s interval", lambda: daemon.runs_of("ports") == runs + 1, 14, daemon)
    # ...and the centre hears of it in the next heartbeat.
    wait_for("the refusal in a heartbeat", lambda: "no_such_key" in str(daemon.node()["health"] or ""), 10, daemon)
    assert daemon.alive()
    # A valid file again: reloaded.
    daemon.config.write_text(agent_yaml(work, ports=3600))
    wait_for("the reload", lambda: daemon.text().count("configuration reloaded") == 2, 5, daemon)
    # Once a valid file is in force the refusal is no longer reported.
    beat = daemon.node()["last_heartbeat_seq"]
    wait_for("a later heartbeat", lambda: daemon.node()["last_heartbeat_seq"] > beat, 10, daemon)
    assert "no_such_key" not in str(daemon.node()["health"] or "")
    # SIGHUP reloads too (without any change to the file).
    daemon.signal(signal.SIGHUP)
    wait_for("the SIGHUP reload", lambda: daemon.text().count("configuration reloaded") == 3, 5, daemon)
    assert daemon.alive()
    assert daemon.stop() == 0
