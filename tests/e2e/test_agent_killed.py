"""SIGKILL the agent daemon at random moments (while it collects, spools and delivers a backlog),
restart it each time: in the end everything it spooled is stored exactly once, and it never
trips over its own resend (a replay refusal would leave reports in spool/rejected)."""

from __future__ import annotations

import os
import random
import time
from typing import Callable, Dict, List

from tests.centre_process import CentreProcess
from tests.e2e.harness import (
    AgentProcess,
    assert_exactly_once,
    diagnostics,
    drained,
    metric,
    spool_backlog,
    stored_seqs,
    wait_until,
)

KILLS = 8
BACKLOG = 150
"""Reports waiting before each restart, so that a kill can land in the middle of a delivery."""


def test_random_sigkills_lose_nothing_and_store_nothing_twice(
    centre: CentreProcess, make_agent: Callable[..., AgentProcess], api_key: Dict[str, str]
) -> None:
    seed = int(os.environ.get("TILLSYN_TEST_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    agent = make_agent()
    expected: Dict[int, str] = spool_backlog(agent, BACKLOG)
    gaps: List[int] = []
    deadline = time.monotonic() + 60
    for kill in range(KILLS):
        if kill % 3 == 2:
            expected.update(spool_backlog(agent, BACKLOG // 3))
        agent.start()
        delay = rng.uniform(0.2, 2.5)
        time.sleep(delay)  # a random moment: the point is not to choose it
        if kill % 2:
            agent.nudge()  # a collection round triggered by a changed agent.yaml, maybe mid-delivery
            time.sleep(rng.uniform(0.0, 1.5))
        agent.kill()
        # A number allocated (seq.json) whose report was never written, because the kill fell
        # between the two, is the one gap the protocol allows; note each one the kill left.
        last = agent.last_seq()
        if last not in agent.pending() and last not in stored_seqs(centre, agent.agent_id):
            gaps.append(last)
        assert time.monotonic() < deadline, f"kill loop overran (seed {seed})"
    logged = len(agent.spooled_logged())
    agent.start()
    wait_until(lambda: len(agent.spooled_logged()) > logged, 20, lambda: f"the first round\n{agent.tail()}")
    wait_until(lambda: drained(agent, centre), 40, lambda: f"(seed {seed}) " + diagnostics(agent, centre))
    assert agent.stop() == 0
    rows = assert_exactly_once(agent, centre, known_gaps=gaps, expect_ids=expected, api_key=api_key)
    # Every start that lived long enough spooled its own first round; each of those is stored.
    made = set(agent.spooled_logged()) - set(expected)
    assert made and made <= {r.seq for r in rows}, f"seed {seed}"
    starts = agent.log_text().count("--- start at")
    assert starts == KILLS + 1
    # An interrupted atomic write may leave its temporary file behind; it must never be
    # mistaken for a report (it is not named like one), and it must not pile up.
    assert len(agent.litter()) <= KILLS, agent.litter()
    # The centre's side: resends were acknowledged as duplicates, nothing was refused.
    assert metric(centre, "tillsyn_requests_rejected_total") == 0
    duplicates = metric(centre, "tillsyn_reports_duplicate_total")
    print(
        f"seed {seed}: {len(rows)} stored, {duplicates:g} resent and acknowledged as duplicates, "
        f"gaps {gaps}, temporary files left {len(agent.litter())}"
    )
