"""The centre goes away (clean stop or crash) while the daemon keeps collecting into its spool;
when it is back, every report arrives exactly once, with its original collection time."""

from __future__ import annotations

import time
from typing import Callable, Dict

import pytest

from tests.centre_process import CentreProcess
from tests.e2e.harness import (
    AgentProcess,
    assert_exactly_once,
    diagnostics,
    drained,
    grows_past,
    stored_seqs,
    wait_until,
)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_reports_spooled_during_an_outage_arrive_exactly_once(
    how: str, centre: CentreProcess, make_agent: Callable[..., AgentProcess], api_key: Dict[str, str]
) -> None:
    agent = make_agent().start()
    # The first collection round is delivered while the centre is up.
    wait_until(lambda: stored_seqs(centre, agent.agent_id), 20, lambda: f"the first report\n{agent.tail()}")
    before = len(agent.spooled_logged())

    def spooled() -> int:
        return len(agent.spooled_logged())

    centre.stop() if how == "SIGTERM" else centre.kill()
    down_at = time.time()
    # The daemon keeps collecting: a changed agent.yaml starts a round (file watch), the
    # 10 s interval does too.  Wait until it has spooled several reports it cannot send.
    for _ in range(4):
        count = len(agent.spooled_logged())
        agent.nudge()
        wait_until(grows_past(spooled, count), 15, lambda: f"a report spooled\n{agent.tail()}")
    held = agent.pending()
    assert len(held) >= 4, f"the spool should hold what the centre missed: {held}\n{agent.tail()}"
    assert "delivery failed, retrying in" in agent.log_text()
    assert agent.proc is not None and agent.proc.poll() is None, "the agent must survive the outage"
    up_at = time.time()

    centre.start()
    wait_until(lambda: drained(agent, centre), 30, lambda: diagnostics(agent, centre))
    assert agent.stop() == 0
    rows = assert_exactly_once(agent, centre, api_key=api_key)
    assert len(agent.spooled_logged()) >= before + 4
    # Reports collected during the outage keep their collection time: they were collected while
    # the centre was down and received only after it came back.
    held_rows = [r for r in rows if r.seq in held]
    assert len(held_rows) == len(held)
    for row in held_rows:
        assert down_at - 1 <= row.collected_at.timestamp() <= up_at + 1, row
        assert row.received_at.timestamp() >= up_at, row
