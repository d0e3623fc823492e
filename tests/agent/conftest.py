"""Fixtures of the agent's tests: a real centre process and the daemons a test started (stopped after it)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest

from tests.agent.daemon_helpers import (
    AgentDaemon,
)
from tests.centre_process import CentreProcess


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[CentreProcess]:
    c = CentreProcess(tmp_path / "centre").start()
    yield c
    c.stop()


@pytest.fixture
def daemons() -> Iterator[List[AgentDaemon]]:
    """Agents started in a test; any still running at the end are stopped."""
    started: List[AgentDaemon] = []
    yield started
    for d in started:
        if d.proc is not None:
            d.proc.kill()
            d.proc.wait(10)
