"""A full disk under the state directory is reported, never fatal (a real small tmpfs, a real daemon).

The state directory is a 256 KiB tmpfs with few inodes, filled up (no new file, no free block):
a round that cannot be spooled is kept in memory and spooled once there is room, heartbeats go
on (their number unsaved but safe), carrying "spool: no space left on device", even across a
restart on the full disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.agent.daemon_helpers import AgentDaemon, agent_yaml, wait_for
from tests.centre_process import CentreProcess
from tests.small_fs import fill, small_tmpfs

FULL = "spool: no space left on device"


@pytest.fixture
def small_state(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/a/state`` on its own small tmpfs (where AgentDaemon keeps its state)."""
    with small_tmpfs(tmp_path / "a" / "state") as state:
        yield state


def _health(daemon: AgentDaemon) -> str:
    return str(daemon.node()["health"] or "")


def test_a_full_disk_is_reported_and_the_round_spooled_once_there_is_room(
    centre: CentreProcess, small_state: Path, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    daemon = AgentDaemon(work, centre, agent_yaml(work, ports=None, backup=3600, heartbeat=5))
    daemons.append(daemon.start())
    wait_for("report 1 stored", lambda: len(daemon.stored()) == 1, 30, daemon)
    fillers = fill(small_state)
    (work / "marker.json").write_text(json.dumps({"finished_at": "2026-11-27T10:00:00Z", "result": "success"}))
    wait_for("the round not spooled", lambda: "report not spooled" in daemon.text(), 15, daemon)
    assert "No space left on device" in daemon.text()
    wait_for("the full disk in a heartbeat", lambda: FULL in _health(daemon), 20, daemon)
    assert daemon.alive() and daemon.spool_files() == []
    # Stopped and started again on the full disk: it runs, and its heartbeats are still accepted.
    assert daemon.stop() == 0
    beat = daemon.node()["last_heartbeat_seq"]
    daemon.start()
    wait_for("a heartbeat after the restart", lambda: daemon.node()["last_heartbeat_seq"] > beat, 20, daemon)
    wait_for("the full disk reported again", lambda: FULL in _health(daemon), 20, daemon)
    # Room again: the round kept in memory is spooled and delivered, and the error is over.
    for path in fillers:
        path.unlink()
    wait_for("the kept round delivered", lambda: len(daemon.stored()) == 2, 30, daemon)
    stored = daemon.stored()
    assert stored[1]["seq"] > stored[0]["seq"]
    assert {e["collector"] for e in stored[1]["report"]["evidence"]} == {"backup"}
    wait_for("a heartbeat without the error", lambda: FULL not in _health(daemon), 20, daemon)
    assert json.loads((small_state / "status.json").read_text())["spool_depth"] == 0
    assert daemon.stop() == 0
