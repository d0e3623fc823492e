"""When a dashboard session ends: idle_minutes after its last use, max_hours after login, or at
once when the account is disabled; a page reloading itself is not use (docs/accounts.md)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from central.auth import sessions, users
from central.config import Sessions
from central.db.engine import read_tx, write_tx
from central.db.schema import sessions as sessions_table
from central.runtime.service import Centre

SETTINGS = Sessions(idle_minutes=60, max_hours=12)
T0 = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


def _started(centre: Centre) -> str:
    with write_tx(centre.engine) as conn:
        users.create(conn, T0, "test", "vera", "a long enough password", "viewer", ["acme"])
        return sessions.start(conn, T0, SETTINGS, users.user_id_of(conn, "vera"), None).cookie


def _resume(centre: Centre, token: str, minutes: float, use: bool = True) -> bool:
    with write_tx(centre.engine) as conn:
        found = sessions.resume(conn, T0 + timedelta(minutes=minutes), SETTINGS, token, use=use)
    return found is not None and found.username == "vera"


def _count(centre: Centre) -> int:
    with read_tx(centre.engine) as conn:
        return len(conn.execute(select(sessions_table.c.id_hash)).all())


def test_use_keeps_a_session_alive_until_max_hours(centre: Centre) -> None:
    token = _started(centre)
    for minute in range(50, 12 * 60, 50):  # used every 50 minutes: never idle for an hour
        assert _resume(centre, token, minute), minute
    assert not _resume(centre, token, 12 * 60)  # but 12 hours after login it ends
    assert _count(centre) == 0 and not _resume(centre, token, 12 * 60 + 1)


def test_reloads_alone_do_not_keep_a_session_alive(centre: Centre) -> None:
    token = _started(centre)
    assert _resume(centre, token, 30)  # used at 8:30
    for minute in range(31, 90):  # then only the page's own reloads, every minute
        assert _resume(centre, token, minute, use=False), minute
    assert not _resume(centre, token, 90, use=False)  # an hour after 8:30: ended
    assert _count(centre) == 0


def test_disabling_the_account_ends_its_sessions_at_once(centre: Centre) -> None:
    token = _started(centre)
    with write_tx(centre.engine) as conn:
        users.change(conn, T0, "test", "vera", disabled=True)
    assert not _resume(centre, token, 1)
    assert _count(centre) == 0
