"""A real agent daemon process for the agent's tests: its agent.yaml, its CLI, waiting on it,
and a systemd notify socket."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.spool import Spool
from collectors import REGISTRY
from evidence.model import Evidence, Status
from evidence.signing import b64, sign
from evidence.wire import canonical
from tests.centre_process import CENTRAL_PYTHON, ROOT

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
        """The centre's stored reports of this agent (from its SQLite database), in ledger order.

        A body is stored as a skeleton and its pieces (central/db/report_bodies.py): read and joined
        by the centre's code in its own interpreter (tests/agent/stored_reports.py)."""
        out = subprocess.run(
            [CENTRAL_PYTHON, "-m", "tests.agent.stored_reports", str(self.centre.state / "central.db"), self.agent_id],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        return [json.loads(line) for line in out.splitlines()]

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


def evidence(size: int, at: Optional[datetime] = None) -> Evidence:
    """A backup record of about ``size`` bytes (shared with the agent's other spool tests)."""
    return Evidence(
        collector="backup",
        collector_version="1.0",
        controls=("M04",),
        collected_at=at or datetime.now(timezone.utc),
        duration_ms=1.0,
        status=Status.COMPLETE,
        observed={"blob": "x" * size},
        gaps=(),
        error=None,
    )


def spool_malformed(spool: Spool, key: Ed25519PrivateKey, agent_id: str, seq: int) -> None:
    """Spool report ``seq`` signed by this node but malformed (an evidence status the centre does not
    know): the centre refuses it for good (400 with its index in the batch)."""
    bad = {
        "type": "report",
        "v": 1,
        "agent_id": agent_id,
        "report_id": uuid.uuid4().hex,
        "seq": seq,
        "collected_at": "2026-11-27T10:00:00Z",
        "agent_version": "t",
        "evidence": [{**evidence(10).to_dict(), "status": "splendid"}],
    }
    body = canonical(bad)
    (spool.dir / f"{seq:020d}.json").write_text(
        json.dumps({"report_id": bad["report_id"], "seq": seq, "body": b64(body), "signature": sign(key, body)})
    )
