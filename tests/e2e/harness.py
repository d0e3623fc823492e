"""The real agent daemon as a process beside a real centre, and the exactly-once ledger checks.

The agent runs as ``python -m agent.cli --config X --state-dir Y run`` with its stderr in
``agent.log`` (appended across restarts), so what it says it spooled (``report N spooled``)
can be compared with the rows of the centre's ``reports`` table, read with sqlite3.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

import requests

from agent import __version__
from agent.collect import run_collectors
from agent.config import load
from agent.identity import load_key
from agent.spool import Spool
from agent.state import write_json
from collectors import REGISTRY
from tests.centre_process import ROOT, CentreProcess, free_port

SPOOLED = re.compile(r"report (\d+) spooled")
SPOOL_FILE = re.compile(r"^(\d{20})\.json$")
REFUSED = re.compile(r"centre refused \(4\d\d\)[^\n]*")


def wait_until(check: Callable[[], Any], seconds: float, what: Callable[[], str] | str, step: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy, at most ``seconds``; fail saying ``what``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"timed out after {seconds:g} s waiting for {detail}")
        time.sleep(step)


def grows_past(count: Callable[[], int], floor: int) -> Callable[[], bool]:
    """A check for :func:`wait_until`: ``count()`` is above ``floor``."""
    return lambda: count() > floor


def agent_yaml(nut_port: Optional[int] = None, nut_dir: Optional[Path] = None, nudge: int = 0, extra: str = "") -> str:
    """Short intervals: power and ports every 10 s, heartbeats every 5 s, quick retries, others off
    unless ``extra`` (more lines under ``collectors:``) configures them.

    Without ``nut_port`` the power collector asks a port where nothing listens (not present,
    quickly); ``nut_dir`` keeps the host's own /etc/nut out of the evidence.
    """
    port = nut_port or free_port()
    # every other collector off unless ``extra`` configures it (collectors added later too)
    off = "".join(
        f"  {name}: {{enabled: false}}\n"
        for name in sorted(REGISTRY)
        if name not in ("power", "ports") and f"  {name}:" not in extra
    )
    nut_conf = f", nut_config_dir: {nut_dir}" if nut_dir else ""
    return (
        "heartbeat_interval: 5\n"
        "jitter: 0\n"
        "delivery: {backoff_min: 0.2, backoff_max: 2}\n"
        "collectors:\n"
        f"  power: {{interval: 10, nut_servers: [{{host: 127.0.0.1, port: {port}}}], apcupsd_servers: [],\n"
        f"          nut_follow_upsmon: false, power_supply: false, server_timeout: 1.0{nut_conf}}}\n"
        "  ports: {interval: 10}\n"
        f"{off}"
        f"{extra}"
        f"# nudge {nudge}\n"
    )


class AgentProcess:
    """One node: its state directory, its agent.yaml, and the daemon process when running."""

    def __init__(self, base: Path, config_text: str) -> None:
        self.base = base
        self.state = base / "state"
        self.config = base / "agent.yaml"
        self.log = base / "agent.log"
        base.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config_text)
        # Logs to stderr (agent.log), never to a journal this test cannot read.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TILLSYN_") and k != "JOURNAL_STREAM"}
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.agent_id = ""
        self.nudges = 0

    def _command(self, *args: str) -> List[str]:
        return [sys.executable, "-m", "agent.cli", "--config", str(self.config), "--state-dir", str(self.state), *args]

    def enrol(self, centre: CentreProcess) -> str:
        done = subprocess.run(
            self._command("enroll", "--server", centre.url, "--token", centre.token()),
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        self.agent_id = json.loads((self.state / "enrolment.json").read_text())["agent_id"]
        return self.agent_id

    def start(self) -> AgentProcess:
        assert self.proc is None, "already running"
        with open(self.log, "ab") as log:
            log.write(f"--- start at {time.time():.3f}\n".encode())
            self.proc = subprocess.Popen(
                self._command("run"), env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log
            )
        return self

    def kill(self) -> None:
        """SIGKILL, as in a crash or the OOM killer: nothing of the agent runs after it."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> int:
        """SIGTERM and wait: the agent's own clean shutdown; returns its exit status."""
        code = 0
        if self.proc is not None:
            self.proc.terminate()
            try:
                code = self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("the agent did not stop within 15 s of SIGTERM") from None
            self.proc = None
        return code

    def nudge(self) -> None:
        """Change agent.yaml (a comment only): the file watch reloads it and starts a collection round."""
        self.nudges += 1
        text = re.sub(r"# nudge \d+\n", f"# nudge {self.nudges}\n", self.config.read_text())
        self.config.write_text(text)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def spooled_logged(self) -> List[int]:
        """Every ``report N spooled`` the daemon logged, across restarts, in order."""
        return [int(m.group(1)) for m in SPOOLED.finditer(self.log_text())]

    def pending(self) -> List[int]:
        """Sequence numbers of the reports waiting in the spool right now."""
        spool = self.state / "spool"
        if not spool.is_dir():
            return []
        return sorted(int(m.group(1)) for m in (SPOOL_FILE.match(n) for n in os.listdir(spool)) if m)

    def rejected(self) -> List[str]:
        directory = self.state / "spool" / "rejected"
        return sorted(os.listdir(directory)) if directory.is_dir() else []

    def last_seq(self) -> int:
        """The highest report sequence the agent ever allocated (spool/seq.json)."""
        path = self.state / "spool" / "seq.json"
        return int(json.loads(path.read_text()).get("last", 0)) if path.exists() else 0

    def litter(self) -> List[str]:
        """Temporary files of interrupted atomic writes left in the spool directory."""
        spool = self.state / "spool"
        return sorted(n for n in os.listdir(spool) if n.startswith(".")) if spool.is_dir() else []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(*args), env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class Fleet:
    """Enrolled (not yet started) agents below one directory, each with its own; :meth:`kill_all`
    at the end of a test, even a failed one."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.made: List[AgentProcess] = []

    def make(self, centre: CentreProcess, config_text: str = "", name: str = "node") -> AgentProcess:
        agent = AgentProcess(self.base / name, config_text or agent_yaml())
        self.made.append(agent)
        agent.enrol(centre)
        return agent

    def kill_all(self) -> None:
        for agent in self.made:
            agent.kill()


@dataclass(frozen=True)
class Row:
    seq: int
    report_id: str
    chain_index: int
    collected_at: datetime
    received_at: datetime


def _utc(value: Any) -> datetime:
    """A time of the ledger read with sqlite3: microseconds since 1970 since migration 0016, text before."""
    if isinstance(value, int):
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=value)
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return _utc(value if isinstance(value, int) else str(value))


def ledger(centre: CentreProcess, agent_id: str) -> List[Row]:
    """The node's rows of the centre's ``reports`` table, in chain order (read with sqlite3, or
    psycopg when the centre runs on PostgreSQL)."""
    url = centre.env.get("TILLSYN_DATABASE_URL", "")
    if url.startswith("postgresql"):
        import psycopg  # the centre's driver, in its environment only

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), connect_timeout=10) as conn:
            found = conn.execute(
                "SELECT seq, report_id, chain_index, collected_at, received_at FROM reports"
                " WHERE agent_id = %s ORDER BY chain_index",
                (agent_id,),
            ).fetchall()
        return [Row(int(s), str(r), int(c), _when(ca), _when(ra)) for s, r, c, ca, ra in found]
    db = sqlite3.connect(f"file:{centre.state / 'central.db'}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT seq, report_id, chain_index, collected_at, received_at FROM reports"
            " WHERE agent_id = ? ORDER BY chain_index",
            (agent_id,),
        ).fetchall()
    finally:
        db.close()
    return [Row(int(s), str(r), int(c), _utc(ca), _utc(ra)) for s, r, c, ca, ra in rows]


def stored_seqs(centre: CentreProcess, agent_id: str) -> List[int]:
    return [row.seq for row in ledger(centre, agent_id)]


def drained(agent: AgentProcess, centre: CentreProcess) -> bool:
    """Nothing waits in the spool and the centre holds the agent's last allocated report."""
    if agent.pending():
        return False
    seqs = stored_seqs(centre, agent.agent_id)
    return bool(seqs) and seqs[-1] == agent.last_seq()


def metric(centre: CentreProcess, name: str) -> float:
    """Sum of a counter of the running centre's /metrics (all label values), since it started."""
    text = requests.get(centre.url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.split("{")[0].split(" ")[0] == name)


def diagnostics(agent: AgentProcess, centre: CentreProcess) -> str:
    seqs = stored_seqs(centre, agent.agent_id)
    return (
        f"spool drained; pending {agent.pending()[:10]} (depth {len(agent.pending())}), "
        f"last allocated {agent.last_seq()}, centre has {len(seqs)} up to {seqs[-1] if seqs else None}, "
        f"rejected {agent.rejected()}\nagent log:\n{agent.tail()}"
    )


def assert_exactly_once(
    agent: AgentProcess,
    centre: CentreProcess,
    *,
    known_gaps: Sequence[int] = (),
    expect_ids: Optional[Dict[int, str]] = None,
    api_key: Optional[Dict[str, str]] = None,
    clock_ahead_s: float = 0,
) -> List[Row]:
    """Every report the agent spooled is in the centre's ledger exactly once, in order.

    Sequence numbers 1..seq.json's last must all be stored except ``known_gaps`` (a number
    allocated by an agent killed before it wrote the report: docs/protocol.md, "a number can be
    skipped after a crash, never reused"); nothing is left in the spool or set aside as rejected;
    the chain is contiguous and ``tillsyn-central verify`` passes.
    """
    rows = ledger(centre, agent.agent_id)
    seqs = [r.seq for r in rows]
    ids = [r.report_id for r in rows]
    assert len(set(ids)) == len(ids), "a report id stored twice"
    assert len(set(seqs)) == len(seqs), "a sequence number stored twice"
    assert seqs == sorted(seqs), f"stored out of order: {seqs}"
    assert [r.chain_index for r in rows] == list(range(1, len(rows) + 1)), "chain indexes not 1..n"
    last = agent.last_seq()
    missing: Set[int] = set(range(1, last + 1)) - set(seqs)
    assert missing <= set(known_gaps), (
        f"allocated but never stored: {sorted(missing - set(known_gaps))} (explained gaps: {sorted(known_gaps)})"
    )
    assert not set(seqs) - set(range(1, last + 1)), f"stored beyond the agent's last sequence {last}"
    logged = agent.spooled_logged()
    assert len(logged) == len(set(logged)), f"the agent logged a sequence number twice: {logged}"
    unstored = set(logged) - set(seqs) - set(known_gaps)  # a known gap may be a report dropped at the bound
    assert not unstored, f"logged as spooled but not stored: {sorted(unstored)}"
    assert agent.pending() == [], f"still in the spool: {agent.pending()}"
    assert agent.rejected() == [], f"reports the centre refused for good: {agent.rejected()}"
    refusals = REFUSED.findall(agent.log_text())
    assert not refusals, f"the centre refused reports for good (e.g. a replay): {refusals[:3]}"
    collected = [r.collected_at for r in rows]
    assert collected == sorted(collected), "collection times not in chain order"
    # a node whose clock runs ahead (clock_ahead_s) collects "after" the centre received
    assert all(r.received_at + timedelta(seconds=clock_ahead_s) >= r.collected_at for r in rows)
    if expect_ids:
        by_seq = {r.seq: r.report_id for r in rows}
        wrong = {s: i for s, i in expect_ids.items() if by_seq.get(s) != i}
        assert not wrong, f"{len(wrong)} reports stored under another id or not at all, e.g. {list(wrong)[:5]}"
    verified = centre.cli("verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    if api_key is not None:
        node = next(n for n in centre.get("/api/v1/nodes", api_key) if n["id"] == agent.agent_id)
        assert node["ledger_length"] == len(rows), node
    return rows


class _BulkSpool(Spool):
    """The agent's own spool writer with the next sequence number counted in memory.

    ``Spool.add`` rescans the directory for every report (quadratic over a backlog of
    hundreds); the files written are the same, and seq.json is left as the agent leaves it.
    """

    def __init__(self, directory: Path, last: int) -> None:
        super().__init__(directory)
        self.last = last

    def _next_seq(self) -> int:
        self.last += 1
        return self.last


def spool_backlog(agent: AgentProcess, count: int) -> Dict[int, str]:
    """Fill the stopped agent's spool with ``count`` signed reports of one real collection.

    Stands for a node that collected for a long time while the centre was away; returns
    seq -> report id.  The daemon must not be running (one writer of the sequence).
    """
    assert agent.proc is None, "stop the daemon before filling its spool"
    config = load(agent.config, required=True)
    records = run_collectors(config)
    key = load_key(agent.state)
    spool = _BulkSpool(agent.state / "spool", max([agent.last_seq(), *agent.pending()]))
    start = datetime.now(timezone.utc)  # a millisecond apart: after what was spooled before, in order
    added = {}
    for i in range(count):
        item = spool.add(key, agent.agent_id, __version__, start + timedelta(milliseconds=i), records)
        added[item.seq] = item.report_id
    write_json(agent.state / "spool" / "seq.json", {"last": spool.last})
    return added
