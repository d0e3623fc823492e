"""Fixtures: a real centre and real agent daemons, stopped (or killed) even when a test fails."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Iterator

import pytest

from tests.central.conftest import PG_ADMIN_URL, _drop_pg_database, _fresh_pg_database, _pg_available
from tests.centre_process import CentreProcess
from tests.conftest import in_ci
from tests.e2e.harness import AgentProcess, Fleet


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
    fleet = Fleet(tmp_path)
    yield lambda config_text="", name="node": fleet.make(centre, config_text, name)
    fleet.kill_all()


def fresh_pg_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL at TILLSYN_TEST_PG, dropped afterwards (``yield from`` it
    in a fixture): the test is skipped without a server, and fails under CI."""
    if not _pg_available():
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    url = _fresh_pg_database(PG_ADMIN_URL)
    try:
        yield url
    finally:
        _drop_pg_database(PG_ADMIN_URL, url)


@pytest.fixture
def pg_database() -> Iterator[str]:
    yield from fresh_pg_database()
