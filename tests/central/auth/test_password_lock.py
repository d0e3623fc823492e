"""Argon2 (tens of milliseconds of CPU) never runs while this process holds SQLite's write lock,
which would hold up every other writer, the agents' heartbeats and reports included: logging in,
changing one's own password, an admin creating a person or resetting a password."""

from __future__ import annotations

from typing import Any, Callable, List

import pytest
from fastapi.testclient import TestClient

from central.auth import passwords, users
from central.db.engine import _SQLITE_WRITERS
from central.runtime.service import Centre
from tests.central.people import PASSWORD, log_in, make_user, post, reset


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_argon2_runs_outside_the_write_lock(
    client: TestClient, centre: Centre, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(centre, "alice", "admin", "*")
    make_user(centre, "vera", "viewer", "acme")
    lock = _SQLITE_WRITERS[centre.engine]
    held: List[str] = []
    calls: List[str] = []

    def watched(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            calls.append(name)
            if lock.locked():
                held.append(name)
            return real(*args)

        return call

    monkeypatch.setattr(users, "verify_password", watched("verify", passwords.verify_password))
    monkeypatch.setattr(users, "hash_password", watched("hash", passwords.hash_password))
    monkeypatch.setattr(users, "burn_time", watched("burn", passwords.burn_time))

    alice, csrf = log_in(client, "alice")
    assert client.post("/api/v1/session", json={"username": "nobody", "password": "x" * 12}).status_code == 401
    assert client.post("/api/v1/session", json={"username": "vera", "password": "wrong" * 3}).status_code == 401
    made = post(alice, csrf, "/admin/people", username="otto", role="operator", tenants="acme")
    assert made.status_code == 200, made.text
    answer = reset(alice, csrf, "vera", password="a fresh passphrase")
    assert answer.status_code == 200, answer.text
    new = "a brand new passphrase"
    changed = post(alice, csrf, "/account/password", current=PASSWORD, new=new, again=new)
    assert changed.status_code == 303, changed.text
    assert {"verify", "hash", "burn"} <= set(calls)  # every kind of Argon2 work was exercised
    assert held == [], f"Argon2 ran under the write lock: {held}"
