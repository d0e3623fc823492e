"""Fixtures of the fault tests: a PostgreSQL server of their own, and real agents stopped (killed)
even when a test fails."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.conftest import centre  # noqa: F401  (a real centre on SQLite, stopped at the end)
from tests.e2e.harness import Fleet
from tests.reliability.postgres import PgInstance


@pytest.fixture
def postgres() -> Iterator[PgInstance]:
    instance = PgInstance().start()
    yield instance
    instance.stop()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Enrolled agents of a centre the test starts (``fleet.make(centre, ...)``), killed at the end."""
    made = Fleet(tmp_path)
    yield made
    made.kill_all()
