"""Ending a fault test with every spooled report delivered, without a race against the daemon's
next round."""

from __future__ import annotations

from functools import partial

from tests.centre_process import CentreProcess
from tests.e2e.harness import AgentProcess, diagnostics, drained, wait_until


def stop_drained(agent: AgentProcess, centre: CentreProcess, seconds: float = 60) -> None:
    """Wait until the daemon's spool is empty, stop it; a round it spooled in between (its interval
    came round) is delivered by one ``run --once``, so the spool is empty and the ledger complete."""
    wait_until(partial(drained, agent, centre), seconds, partial(diagnostics, agent, centre))
    assert agent.stop() == 0
    if not drained(agent, centre):
        done = agent.cli("run", "--once")
        assert done.returncode == 0, done.stderr
        assert drained(agent, centre), diagnostics(agent, centre)
