"""A page reloading itself every minute is not use: a dashboard left open on a screen still logs
out ``sessions.idle_minutes`` after its last real use (docs/accounts.md)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine, select, update

from central.db.engine import make_engine, read_tx, write_tx
from central.db.schema import sessions
from tests.central.web.conftest import PASSWORD, make_user
from tests.centre_process import CentreProcess


@pytest.fixture
def engine(centre_process: CentreProcess) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{centre_process.state / 'central.db'}")
    yield made
    made.dispose()


def _last_seen(engine: Engine) -> datetime:
    with read_tx(engine) as conn:
        return conn.execute(select(sessions.c.last_seen_at)).scalar_one()


def _seen_at(engine: Engine, moment: datetime) -> None:
    with write_tx(engine) as conn:
        conn.execute(update(sessions).values(last_seen_at=moment))


def _reload_by_itself(page: Any) -> None:
    """Let the page's own minute pass (Playwright's clock drives its timers) and its reload land."""
    with page.expect_navigation():
        page.clock.run_for("01:01")


def test_a_page_reloading_itself_is_not_use(centre_process: CentreProcess, browser: Any, engine: Engine) -> None:
    make_user(centre_process, "vera", "viewer", "acme")
    context = browser.new_context()
    page = context.new_page()
    page.clock.install()  # before any page loads: the pages' timers run on this clock
    page.goto(centre_process.url + "/")
    page.fill("input[name=username]", "vera")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(centre_process.url + "/")

    quiet_since = datetime.now(timezone.utc) - timedelta(minutes=30)
    _seen_at(engine, quiet_since)
    _reload_by_itself(page)
    assert page.url == centre_process.url + "/"  # still logged in: 30 of 60 minutes
    assert _last_seen(engine) == quiet_since  # and the reload did not count as use
    assert "tillsyn_refresh" not in page.evaluate("document.cookie")  # cleared once the page loaded

    page.goto(centre_process.url + "/controls")  # a person clicking: use
    assert _last_seen(engine) > quiet_since + timedelta(minutes=29)

    _seen_at(engine, datetime.now(timezone.utc) - timedelta(minutes=61))
    _reload_by_itself(page)
    page.wait_for_url(centre_process.url + "/login*")  # idle for longer than idle_minutes: logged out
    with read_tx(engine) as conn:
        assert conn.execute(select(sessions)).all() == []
    context.close()
