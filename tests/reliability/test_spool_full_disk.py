"""The agent's spool on a full file system while reports wait in it (a real small tmpfs as the
state directory, a real daemon, a real centre that goes away).

With the centre up, a full disk is a clear error in the log and in the next heartbeat.  With the
centre away and reports waiting, the disk filled again: the reports already spooled stay whole (each
loads and its signature verifies), no temporary file is left, the status says how many wait.  When
space returns and the centre is back, every report that was spooled arrives exactly once, the
error is over, and ``tillsyn-central verify`` passes.
"""

from __future__ import annotations

import base64
import json
from functools import partial
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from agent.identity import load_key
from evidence.signing import public_key_text, verify
from tests.centre_process import CentreProcess
from tests.e2e.harness import AgentProcess, Fleet, assert_exactly_once, grows_past, stored_seqs, wait_until
from tests.reliability.settle import stop_drained
from tests.small_fs import fill, small_tmpfs

FULL = "spool: no space left on device"


@pytest.fixture
def small_state(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/node/state`` (the agent's state directory) on a 256 KiB tmpfs with 64 inodes."""
    with small_tmpfs(tmp_path / "node" / "state") as state:
        yield state


def _health(centre: CentreProcess, api_key: Dict[str, str], agent: AgentProcess) -> str:
    node = next(n for n in centre.get("/api/v1/nodes", api_key) if n["id"] == agent.agent_id)
    return json.dumps(node.get("health") or {})


def _spooled(agent: AgentProcess) -> int:
    return len(agent.spooled_logged())


def _whole(agent: AgentProcess) -> List[int]:
    """Sequence numbers of the waiting reports, each checked whole: a spooled record whose
    signature verifies with the node's key."""
    public = public_key_text(load_key(agent.state))
    seqs = []
    for seq in agent.pending():
        record = json.loads((agent.state / "spool" / f"{seq:020d}.json").read_bytes())
        verify(public, base64.b64decode(record["body"]), record["signature"])
        assert record["seq"] == seq, record
        seqs.append(seq)
    return seqs


def test_a_full_spool_disk_keeps_what_is_spooled_and_recovers_when_space_returns(
    tmp_path: Path, centre: CentreProcess, small_state: Path, fleet: Fleet
) -> None:
    api_key = centre.api_key()
    agent = fleet.make(centre, name="node").start()
    assert agent.state == small_state
    wait_until(partial(stored_seqs, centre, agent.agent_id), 30, agent.tail)

    # The centre up: the full disk is said in the log and in a heartbeat.
    fillers = fill(small_state)
    agent.nudge()
    wait_until(lambda: "report not spooled" in agent.log_text(), 30, agent.tail)
    assert "No space left on device" in agent.log_text()
    wait_until(lambda: FULL in _health(centre, api_key, agent), 30, lambda: _health(centre, api_key, agent))

    # The centre away: room again, reports wait in the spool; then the disk full again.
    centre.kill()
    for path in fillers:
        path.unlink()
    for _ in range(3):
        count = _spooled(agent)
        agent.nudge()
        wait_until(grows_past(partial(_spooled, agent), count), 30, agent.tail)
    waiting = agent.pending()
    assert len(waiting) >= 3, waiting
    failures_before = agent.log_text().count("report not spooled")
    fillers = fill(small_state)
    agent.nudge()
    wait_until(lambda: agent.log_text().count("report not spooled") > failures_before, 30, agent.tail)
    assert agent.proc is not None and agent.proc.poll() is None, "the agent must survive a full disk"
    assert _whole(agent) == waiting, "the reports spooled before the disk filled are not all whole"
    litter = [name for name in agent.litter() if name != ".lock"]  # .lock: the spool writers' lock file
    assert litter == [], f"temporary files of a cut-short write: {litter}"
    status = agent.cli("status", "--offline")
    assert status.returncode == 0, status.stderr
    assert f"spool depth:    {len(waiting)} (dropped at the bound: 0)" in status.stdout, status.stdout

    # Space returns, the centre is back: everything spooled arrives once, the error is over.
    for path in fillers:
        path.unlink()
    centre.start()
    wait_until(lambda: set(waiting) <= set(stored_seqs(centre, agent.agent_id)), 30, agent.tail)
    wait_until(lambda: FULL not in _health(centre, api_key, agent), 30, lambda: _health(centre, api_key, agent))
    stop_drained(agent, centre)
    rows = assert_exactly_once(agent, centre, api_key=api_key)
    print(
        "full disk "
        + json.dumps(
            {
                "stored": len(rows),
                "waiting_when_full": len(waiting),
                "not_spooled_logged": agent.log_text().count("report not spooled"),
            }
        )
    )
