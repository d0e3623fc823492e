"""``tillsyn-agent run`` as a real process against a real centre process.

sd_notify on a socket the test binds itself, per-collector intervals, a hanging
collector, file-event triggers, configuration reload (file change and SIGHUP) and
``tillsyn-agent status`` after the daemon ran.  Helpers here (``AgentDaemon``,
``agent_yaml``) are shared with test_spool.py and test_pseudonymise.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Tuple

import pytest

from collectors import REGISTRY
from tests.centre_process import ROOT, CentreProcess

SPOOLED = re.compile(r"report (\d+) spooled \(([^)]*)\)")


class Enrolling(Protocol):
    """What enrolling needs of a centre: a real one (CentreProcess) or a scripted one (fake_centre)."""

    url: str

    def token(self) -> str: ...


def agent_env(**extra: str) -> Dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TILLSYN_", "NOTIFY_SOCKET", "WATCHDOG_", "JOURNAL_STREAM"))
    }
    env.update(extra)
    return env


def agent_cli(state: Path, config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "--config", str(config), "--state-dir", str(state), *args],
        env=agent_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def agent_yaml(
    work: Path,
    *,
    ports: Optional[int] = 3600,
    backup: Optional[int] = None,
    backup_timeout: float = 30.0,
    restic_binary: Optional[str] = None,
    heartbeat: int = 5,
    extra: str = "",
) -> str:
    """A test agent.yaml: only the collectors asked for, no jitter, quick retries.

    ``backup`` enables the backup collector with a marker backup ``work/marker.json``
    and a restore test ``work/restore.json`` (both watched), plus a restic backup run
    through ``restic_binary`` when given.
    """
    lines = [
        "command_timeout: 5",
        "jitter: 0",
        f"heartbeat_interval: {heartbeat}",
        "delivery: {backoff_min: 0.2, backoff_max: 1}",
        "collectors:",
    ]
    # every other collector off (those added later too), so rounds hold only what a test asks for
    lines += [f"  {name}: {{enabled: false}}" for name in sorted(REGISTRY) if name not in ("ports", "backup")]
    lines.append(f"  ports: {{interval: {ports}}}" if ports else "  ports: {enabled: false}")
    if backup:
        lines += [
            f"  backup:\n    interval: {backup}\n    timeout: {backup_timeout}",
            f"    restore_test_dir: {work}",
            *([f"    restic_binary: {restic_binary}"] if restic_binary else []),
            "    backups:",
            f"      - {{name: restore, type: marker, marker: {work / 'marker.json'}}}",
        ]
        if restic_binary:
            lines.append(
                f"      - {{name: slow, type: restic, repository: {work / 'repo'}, "
                f"password_file: {work / 'pw'}, timeout: 60}}"
            )
    else:
        lines.append("  backup: {enabled: false}")
    return "\n".join(lines) + "\n" + extra


class AgentDaemon:
    """An enrolled agent state directory and its ``run`` process, stderr captured to a file."""

    def __init__(self, work: Path, centre: Enrolling, config_text: str) -> None:
        self.work = work
        self.centre = centre
        self.state = work / "state"
        self.config = work / "agent.yaml"
        self.log = work / "agent.log"
        work.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config_text)
        self.proc: Optional[subprocess.Popen[bytes]] = None
        enrolled = agent_cli(self.state, self.config, "enroll", "--server", centre.url, "--token", centre.token())
        assert enrolled.returncode == 0, enrolled.stderr
        self.agent_id = json.loads((self.state / "enrolment.json").read_text())["agent_id"]

    def start(self, **env: str) -> AgentDaemon:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent.cli",
                    "--config",
                    str(self.config),
                    "--state-dir",
                    str(self.state),
                    "run",
                ],
                env=agent_env(**env),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int:
        """SIGTERM and wait; the exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise
        self.proc = None
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def rounds(self) -> List[Tuple[int, List[str]]]:
        """Every "report N spooled (a, b)" line: (N, [a, b])."""
        return [(int(m.group(1)), m.group(2).split(", ")) for m in SPOOLED.finditer(self.text())]

    def runs_of(self, collector: str) -> int:
        return sum(collector in names for _, names in self.rounds())

    def spool_files(self) -> List[Path]:
        return sorted((self.state / "spool").glob("[0-9]*.json"))

    def stored(self) -> List[Dict[str, Any]]:
        """The centre's stored reports of this agent (from its SQLite database), in ledger order."""
        with sqlite3.connect(f"file:{self.centre.state / 'central.db'}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute(
                "SELECT seq, report_id, collected_at, body FROM reports WHERE agent_id = ? ORDER BY chain_index",
                (self.agent_id,),
            ).fetchall()
        return [{"seq": s, "report_id": r, "collected_at": c, "report": json.loads(b)} for s, r, c, b in rows]

    def node(self) -> Dict[str, Any]:
        with sqlite3.connect(f"file:{self.centre.state / 'central.db'}?mode=ro", uri=True, timeout=10) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM agents WHERE id = ?", (self.agent_id,)).fetchone()
        return dict(row)


def wait_for(what: str, check: Callable[[], Any], timeout: float, daemon: Optional[AgentDaemon] = None) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` (and the agent's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if daemon is not None and daemon.proc is not None and daemon.proc.poll() is not None:
            pytest.fail(f"agent exited ({daemon.proc.returncode}) while waiting for {what}:\n{daemon.text()[-3000:]}")
        if time.monotonic() > deadline:
            tail = daemon.text()[-3000:] if daemon is not None else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{tail}")
        time.sleep(0.1)


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[CentreProcess]:
    c = CentreProcess(tmp_path / "centre").start()
    yield c
    c.stop()


@pytest.fixture
def daemons() -> Iterator[List[AgentDaemon]]:
    """Agents started in a test; any still running at the end are stopped."""
    started: List[AgentDaemon] = []
    yield started
    for d in started:
        if d.proc is not None:
            d.proc.kill()
            d.proc.wait(10)


# -- sd_notify ------------------------------------------------------------------------------------


class NotifySocket:
    """The test's own NOTIFY_SOCKET: every datagram received, with its arrival time."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages: List[Tuple[float, Dict[str, str]]] = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def with_key(self, key: str) -> List[Tuple[float, Dict[str, str]]]:
        with self.lock:
            return [(t, m) for t, m in self.messages if key in m]

    def close(self) -> None:
        self.closed = True
        self.thread.join(2)
        self.sock.close()


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
