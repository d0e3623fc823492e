"""Fixtures: a real centre and real agent daemons, stopped (or killed) even when a test fails."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

from tests.centre_process import CentreProcess
from tests.e2e.harness import AgentProcess, agent_yaml


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[CentreProcess]:
    process = CentreProcess(tmp_path / "centre").start()
    yield process
    process.stop()


@pytest.fixture
def api_key(centre: CentreProcess) -> Dict[str, str]:
    return centre.api_key()


@pytest.fixture
def make_agent(tmp_path: Path, centre: CentreProcess) -> Iterator[Callable[..., AgentProcess]]:
    """An enrolled (not yet started) agent; every daemon is killed at the end of the test."""
    made: List[AgentProcess] = []

    def make(config_text: str = "", name: str = "node") -> AgentProcess:
        agent = AgentProcess(tmp_path / name, config_text or agent_yaml())
        made.append(agent)
        agent.enrol(centre)
        return agent

    yield make
    for agent in made:
        agent.kill()
