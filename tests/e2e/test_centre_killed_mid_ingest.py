"""SIGKILL the centre while the daemon delivers a large backlog (batches in flight, SQLite
transactions open), several times; after each restart the agent resumes, and in the end every
report is stored exactly once under its own id, in order, and the chain verifies."""

from __future__ import annotations

from typing import Callable, Dict, List

from tests.centre_process import CentreProcess
from tests.e2e.harness import (
    AgentProcess,
    assert_exactly_once,
    diagnostics,
    drained,
    grows_past,
    spool_backlog,
    stored_seqs,
    wait_until,
)

BACKLOG = 500
KILL_AT = (0.2, 0.45, 0.7)
"""Shares of the backlog stored when the centre is killed."""


def test_centre_killed_during_ingest_stores_everything_once(
    centre: CentreProcess, make_agent: Callable[..., AgentProcess], api_key: Dict[str, str]
) -> None:
    agent = make_agent().start()
    wait_until(lambda: stored_seqs(centre, agent.agent_id), 20, lambda: f"the first report\n{agent.tail()}")
    assert agent.stop() == 0
    first = len(stored_seqs(centre, agent.agent_id))
    expected = spool_backlog(agent, BACKLOG)
    total = first + BACKLOG

    agent.start()
    seen_at_kill: List[int] = []

    def stored_count() -> int:
        return len(stored_seqs(centre, agent.agent_id))

    def failures() -> int:
        return agent.log_text().count("delivery failed")

    for share in KILL_AT:
        target = first + int(share * BACKLOG)
        wait_until(grows_past(stored_count, target - 1), 30, f"{target} reports stored", step=0.02)
        centre.kill()
        stored = len(stored_seqs(centre, agent.agent_id))
        seen_at_kill.append(stored)
        assert stored < total, f"the backlog was delivered before the kill ({stored}); make it larger"
        # The agent notices (a refused connection or a reset mid-request) and keeps its spool.
        wait_until(grows_past(failures, failures()), 15, "a failed delivery")
        assert len(agent.pending()) >= total - stored - 50  # at most the batch in flight was acknowledged
        centre.start()
    wait_until(lambda: drained(agent, centre), 60, lambda: diagnostics(agent, centre))
    assert agent.stop() == 0
    rows = assert_exactly_once(agent, centre, expect_ids=expected, api_key=api_key)
    assert len(rows) >= total
    assert seen_at_kill == sorted(seen_at_kill)
