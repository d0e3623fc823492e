"""The durable spool: outages, bounds, refused reports and crashes, with real processes.

Reports are produced quickly by writing the backup marker (a file trigger runs the
backup collector within about a second), so an outage of several reports takes seconds.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

from agent.identity import load_key
from agent.spool import Spool
from tests.agent.daemon_helpers import AgentDaemon, agent_cli, agent_yaml, evidence, spool_malformed, wait_for
from tests.centre_process import ROOT, CentreProcess


def _body(path: Path) -> Dict[str, Any]:
    record = json.loads(path.read_bytes())
    body: Dict[str, Any] = json.loads(base64.b64decode(record["body"]))
    return body


def _trigger(daemon: AgentDaemon, n: int) -> None:
    """Make the daemon spool report number ``n`` by writing the backup marker."""
    (daemon.work / "marker.json").write_text(
        json.dumps({"finished_at": "2026-11-27T10:00:00Z", "result": "success", "n": n})
    )
    wait_for(f"report {n} spooled", lambda: any(seq == n for seq, _ in daemon.rounds()), 10, daemon)


def test_outage_replays_in_order_with_original_times_even_across_sigkill(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None, backup=3600))
    daemons.append(daemon.start())
    wait_for("report 1 delivered", lambda: len(daemon.stored()) == 1, 20, daemon)
    centre.stop()
    for n in (2, 3):
        _trigger(daemon, n)
    # Killed mid-outage and started again: the spool is intact and numbering goes on.
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(10)
    assert len(daemon.spool_files()) == 2
    daemon.start()
    wait_for("the restarted agent's first report", lambda: any(s == 4 for s, _ in daemon.rounds()), 20, daemon)
    for n in (5, 6):
        _trigger(daemon, n)
    waiting = daemon.spool_files()
    assert [int(p.name[:20]) for p in waiting] == [2, 3, 4, 5, 6]
    spooled = {b["report_id"]: b["collected_at"] for b in map(_body, waiting)}
    assert "unreachable" in agent_cli(daemon.state, daemon.config, "status").stdout
    time.sleep(2)
    restarted = time.time()
    centre.start()
    stored = wait_for("all six reports stored", lambda: len(daemon.stored()) >= 6 and daemon.stored(), 20, daemon)
    wait_for("an empty spool", lambda: not daemon.spool_files(), 10, daemon)
    # Exactly once, in order, each with the time it was collected (before the centre came back).
    assert [r["seq"] for r in stored] == [1, 2, 3, 4, 5, 6]
    assert len({r["report_id"] for r in stored}) == 6
    for row in stored[1:]:
        assert spooled[row["report_id"]] == row["report"]["collected_at"]
        collected = datetime.fromisoformat(row["report"]["collected_at"].replace("Z", "+00:00"))
        assert collected.timestamp() < restarted
    times = [r["report"]["collected_at"] for r in stored]
    assert times == sorted(times)
    assert daemon.stop() == 0


def test_age_bound_drops_oldest_counts_and_reports_it(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None, backup=3600, extra="spool: {max_age: 3600}\n"))
    centre.stop()
    daemons.append(daemon.start())
    wait_for("report 1 spooled", daemon.rounds, 20, daemon)
    for n in (2, 3, 4):
        _trigger(daemon, n)
    # The two oldest reports are now two hours old: beyond max_age.
    old = time.time() - 7200
    for path in daemon.spool_files()[:2]:
        os.utime(path, (old, old))
    # The bounds are checked when a report is spooled (and at least once a minute).
    _trigger(daemon, 5)
    wait_for("the old reports dropped", lambda: len(daemon.spool_files()) == 3, 10, daemon)
    assert [int(p.name[:20]) for p in daemon.spool_files()] == [3, 4, 5]
    dropped = json.loads((daemon.state / "spool" / "dropped.json").read_text())
    assert dropped["count"] == 2 and dropped["last_seq"] == 2
    centre.start()
    stored = wait_for("the rest delivered", lambda: len(daemon.stored()) == 3 and daemon.stored(), 20, daemon)
    assert [r["seq"] for r in stored] == [3, 4, 5]
    wait_for(
        "the drop in a heartbeat",
        lambda: "2 report(s) dropped at the spool bound" in str(daemon.node()["health"] or ""),
        10,
        daemon,
    )
    assert daemon.stop() == 0
    shown = agent_cli(daemon.state, daemon.config, "status").stdout
    assert "spool depth:    0 (dropped at the bound: 2)" in shown


def test_size_bound_drops_oldest_first_and_keeps_counting(tmp_path: Path) -> None:
    from evidence.signing import new_private_key

    key = new_private_key()
    spool = Spool(tmp_path / "spool")
    for _ in range(6):
        spool.add(key, "agent-0001", "t", datetime.now(timezone.utc), [evidence(30_000)])
    size = spool.pending()[0].size
    assert spool.enforce_bounds(size * 4, 3600, time.time()) == 2
    assert [s.seq for s in spool.pending()] == [3, 4, 5, 6]
    assert sum(s.size for s in spool.pending()) <= size * 4
    assert spool.enforce_bounds(size * 4, 3600, time.time()) == 0
    spool.add(key, "agent-0001", "t", datetime.now(timezone.utc), [evidence(30_000)])
    assert spool.enforce_bounds(size * 4, 3600, time.time()) == 1
    assert [s.seq for s in spool.pending()] == [4, 5, 6, 7]
    assert spool.dropped() == {"count": 3, "last_seq": 3}
    # A new spool object (a restarted agent) goes on numbering after the highest ever used.
    assert Spool(tmp_path / "spool").add(key, "agent-0001", "t", datetime.now(timezone.utc), []).seq == 8


def test_refused_report_moves_to_rejected_and_does_not_block(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None, backup=3600))
    key = load_key(daemon.state)
    spool = Spool(daemon.state / "spool")
    now = datetime.now(timezone.utc)
    spool.add(key, daemon.agent_id, "t", now, [evidence(10)])
    spool_malformed(spool, key, daemon.agent_id, 2)
    spool.add(key, daemon.agent_id, "t", now, [evidence(10)])
    daemons.append(daemon.start())
    stored = wait_for(
        "reports 1, 3 and the daemon's 4 stored", lambda: len(daemon.stored()) == 3 and daemon.stored(), 20, daemon
    )
    assert [r["seq"] for r in stored] == [1, 3, 4]
    rejected = daemon.state / "spool" / "rejected"
    assert (rejected / f"{2:020d}.json").exists()
    reason = json.loads((rejected / f"{2:020d}.reason.json").read_text())["reason"]
    assert "refused (400)" in reason and "splendid" in reason
    # the centre commits before it answers: the agent empties its spool when the answer arrives
    wait_for("the spool emptied once the acknowledgements arrived", lambda: not daemon.spool_files(), 10, daemon)
    assert not daemon.spool_files()
    assert "centre refused report 2 for good, kept in spool/rejected" in daemon.text()
    wait_for(
        "the refusal in a heartbeat", lambda: "refused by the centre" in str(daemon.node()["health"] or ""), 10, daemon
    )
    assert daemon.stop() == 0


WRITER = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from agent.spool import Spool
from evidence.model import Evidence, Status
from evidence.signing import new_private_key
key = new_private_key()
spool = Spool(Path(sys.argv[1]))
ev = Evidence(collector="backup", collector_version="1", controls=("M04",), collected_at=datetime.now(timezone.utc),
              duration_ms=1.0, status=Status.COMPLETE, observed={"blob": "y" * 400000}, gaps=(), error=None)
print("go", flush=True)
while True:
    spool.add(key, "agent-0001", "t", datetime.now(timezone.utc), [ev])
"""


def test_sigkill_while_writing_leaves_only_whole_reports(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    for round_ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline() == "go\n"
        time.sleep(0.3 + 0.17 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    spool = Spool(directory)
    items = spool.pending()
    assert len(items) >= 4
    for item in items:
        record = item.load()  # raises on a torn file
        body = json.loads(base64.b64decode(record["body"]))
        assert body["seq"] == item.seq == record["seq"]
        assert len(body["evidence"][0]["observed"]["blob"]) == 400000
    assert len({i.load()["report_id"] for i in items}) == len(items)


def test_stale_temp_files_are_cleared_but_a_fresh_one_is_left(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    Spool(directory)
    stale = directory / ".00000000000000000007.json.k2j3h4"
    stale.write_bytes(b'{"report_id": "tor')
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = directory / ".00000000000000000008.json.a8s7d6"  # another process may be writing it now
    fresh.write_bytes(b"{")
    spool = Spool(directory)
    assert not stale.exists()
    assert fresh.exists()
    assert spool.pending() == []


ADDER = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from agent.spool import Spool
from evidence.signing import new_private_key
key = new_private_key()
spool = Spool(Path(sys.argv[1]))
for _ in range(60):
    spool.add(key, "agent-0001", "t", datetime.now(timezone.utc), [])
"""


def test_two_processes_spooling_at_once_lose_nothing(tmp_path: Path) -> None:
    """``run --once`` beside the running daemon: both add to one spool; no number is used twice."""
    directory = tmp_path / "spool"
    Spool(directory)
    procs = [subprocess.Popen([sys.executable, "-c", ADDER, str(directory)], cwd=ROOT) for _ in range(2)]
    for proc in procs:
        assert proc.wait(60) == 0
    items = Spool(directory).pending()
    assert len(items) == 120
    assert len({i.load()["report_id"] for i in items}) == 120


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir())


def test_rejected_reports_count_in_the_bounds_and_go_first(tmp_path: Path) -> None:
    """Twenty refused 50 KB reports and a 100 KiB bound: rejected/ is cut to what fits, oldest first,
    counted; the queued reports are kept while set-aside ones can go instead."""
    from evidence.signing import new_private_key

    key = new_private_key()
    spool = Spool(tmp_path / "spool")
    for _ in range(20):
        item = spool.add(key, "agent-0001", "t", datetime.now(timezone.utc), [evidence(50_000)])
        spool.reject(item, "centre refused (400): malformed")
    queued = spool.add(key, "agent-0001", "t", datetime.now(timezone.utc), [evidence(10_000)])
    rejected = spool.dir / "rejected"
    assert _size(rejected) > 1_000_000
    assert spool.enforce_bounds(100 * 1024, 3600, time.time()) == 0
    assert [p.path.name for p in spool.pending()] == [queued.path.name]
    assert sorted(p.name for p in rejected.iterdir()) == [f"{20:020d}.json", f"{20:020d}.reason.json"]
    assert _size(rejected) + queued.size <= 100 * 1024
    assert spool.dropped() == {"count": 0, "rejected": 19}
    # By age too: a set-aside report older than max_age goes, and is counted.
    old = time.time() - 7200
    for path in rejected.iterdir():
        os.utime(path, (old, old))
    assert spool.enforce_bounds(100 * 1024, 3600, time.time()) == 0
    assert list(rejected.iterdir()) == []
    assert spool.dropped() == {"count": 0, "rejected": 20}
    assert [p.path.name for p in spool.pending()] == [queued.path.name]
