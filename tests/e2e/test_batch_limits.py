"""A centre whose batch limit is below the agent's batch size (limits.max_reports_per_batch in
central.yaml; likewise limits.max_body_bytes) must still receive every report."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.centre_process import CentreProcess
from tests.e2e.harness import AgentProcess, assert_exactly_once, diagnostics, drained, spool_backlog, wait_until


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[CentreProcess]:
    """This module's centre accepts at most 10 reports a request (the agent starts with 50 and halves)."""
    process = CentreProcess(tmp_path / "centre", extra_yaml="limits: {max_reports_per_batch: 10}\n").start()
    yield process
    process.stop()


def test_a_lower_batch_limit_at_the_centre_does_not_stop_delivery(
    centre: CentreProcess, make_agent: Callable[..., AgentProcess]
) -> None:
    agent = make_agent()
    backlog = spool_backlog(agent, 30)
    agent.start()
    wait_until(lambda: drained(agent, centre), 10, lambda: diagnostics(agent, centre))
    assert agent.stop() == 0
    assert_exactly_once(agent, centre, expect_ids=backlog)
