"""Everyone's own page: a new password proved with the current one, personal API keys shown once."""

from __future__ import annotations

import re
from typing import Any, Tuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from central.auth import apikeys
from central.db.engine import read_tx, write_tx
from central.db.schema import api_keys
from central.runtime.service import Centre
from tests.central.conftest import Node, new_token, snapshot
from tests.central.people import PASSWORD, audit_rows, error_of, log_in, make_user, new_key, post, shown_secret


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_viewer_makes_a_key_that_reads_the_api_as_her_until_revoked(client: TestClient, centre: Centre) -> None:
    acme, globex = Node(client, hostname="web.acme"), Node(client, hostname="db.globex")
    acme.enrol(new_token(centre, tenant="acme"))
    globex.enrol(new_token(centre, tenant="globex"))
    make_user(centre, "vera", "viewer", "acme")
    vera, csrf = log_in(client, "vera")
    assert vera.get("/account").status_code == 200

    made = new_key(vera, csrf, "  report script  ")
    assert made.status_code == 200 and "API key report script" in made.text
    secret = shown_secret(made.text)
    assert secret.startswith("tsk_")
    mine = vera.get("/account").text
    assert secret not in mine and "report script" in mine  # listed, never shown again
    nodes = client.get("/api/v1/nodes", headers=_bearer(secret))
    assert nodes.status_code == 200 and [n["hostname"] for n in nodes.json()] == ["web.acme"]
    assert client.get("/api/v1/session", headers=_bearer(secret)).json()["actor"] == "user:vera (apikey:report script)"

    key_id = audit_rows(centre, "apikey.create")[-1]["detail"]["id"]
    revoked = post(vera, csrf, f"/account/keys/{key_id}/revoke", back="/account")
    assert revoked.status_code == 303 and revoked.headers["location"] == "/account"
    refused = client.get("/api/v1/nodes", headers=_bearer(secret))
    assert refused.status_code == 401 and refused.json()["message"] == "unknown or revoked API key"
    assert "revoked" in vera.get("/account").text
    entries = [(e["action"], e["actor"], e["object"], e["source"]) for e in audit_rows(centre, "apikey.")]
    assert entries == [
        ("apikey.create", "user:vera", "report script", "testclient"),
        ("apikey.revoke", "user:vera", "report script", "testclient"),
    ]
    assert audit_rows(centre, "apikey.create")[0]["detail"]["user"] == "vera"


def test_keys_are_revoked_by_their_owner_or_an_admin_only(client: TestClient, centre: Centre) -> None:
    make_user(centre, "alice", "admin", "*")
    make_user(centre, "vera", "viewer", "acme")
    make_user(centre, "otto", "operator", "acme")
    vera, vera_csrf = log_in(client, "vera")
    otto, otto_csrf = log_in(client, "otto")
    secret = shown_secret(new_key(vera, vera_csrf, "vera-cron").text)
    key_id = audit_rows(centre, "apikey.create")[-1]["detail"]["id"]

    before = snapshot(centre)
    stolen = post(otto, otto_csrf, f"/account/keys/{key_id}/revoke")
    assert stolen.status_code == 404 and "no active API key" in stolen.text
    assert "vera-cron" not in otto.get("/account").text
    assert new_key(vera, vera_csrf, "   ").status_code == 400  # a key needs a name
    assert snapshot(centre) == before

    alice, alice_csrf = log_in(client, "alice")
    everyone = alice.get("/admin/people").text
    assert "vera-cron" in everyone and key_id in everyone and secret not in everyone
    done = post(alice, alice_csrf, f"/account/keys/{key_id}/revoke", back="/admin/people")
    assert done.status_code == 303 and done.headers["location"] == "/admin/people"
    assert client.get("/api/v1/nodes", headers=_bearer(secret)).status_code == 401
    again = post(alice, alice_csrf, f"/account/keys/{key_id}/revoke")
    assert again.status_code == 404  # already revoked: nothing to do, and said so
    # the way back is a path on this site only
    other = shown_secret(new_key(vera, vera_csrf, "second").text)
    other_id = audit_rows(centre, "apikey.create")[-1]["detail"]["id"]
    away = post(vera, vera_csrf, f"/account/keys/{other_id}/revoke", back="//evil.example/")
    assert away.headers["location"] == "/"
    assert client.get("/api/v1/nodes", headers=_bearer(other)).status_code == 401
    actors = [(e["actor"], e["detail"]["user"]) for e in audit_rows(centre, "apikey.revoke")]
    assert actors == [("user:alice", "vera"), ("user:vera", "vera")]


def _change(browser: TestClient, csrf: str, current: str, new: str, again: str = "") -> Tuple[int, str]:
    answer = post(browser, csrf, "/account/password", current=current, new=new, again=again or new)
    return answer.status_code, answer.text


def test_a_person_changes_their_own_password_with_the_current_one(client: TestClient, centre: Centre) -> None:
    make_user(centre, "vera", "viewer", "acme")
    here, csrf = log_in(client, "vera")
    elsewhere, _ = log_in(client, "vera")
    new = "my brand new passphrase"
    before = snapshot(centre)
    for current, typed, again, message in (
        (PASSWORD, new, new + "x", "The two new passwords differ; nothing was changed."),
        (PASSWORD, "short", "short", "a password needs at least 12 characters"),
        (PASSWORD, PASSWORD, PASSWORD, "the new password is the same as the current one"),
    ):
        status, text = _change(here, csrf, current, typed, again)
        assert status == 400 and message in error_of(text)
    assert snapshot(centre) == before
    status, text = _change(here, csrf, "wrong password here", new)  # counted like a failed login
    assert status == 400 and "the current password is wrong; nothing was changed" in error_of(text)
    assert [e["detail"] for e in audit_rows(centre, "password.change_failed")] == [{"failures": 1}]
    forged = here.post("/account/password", data={"current": PASSWORD, "new": new, "again": new})
    assert forged.status_code == 403 and forged.json()["error"] == "csrf"

    done = post(here, csrf, "/account/password", current=PASSWORD, new=new, again=new)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=password"  # a reload resends nothing
    shown = here.get("/account?done=password")
    assert shown.status_code == 200 and "Your password was changed; your other sessions have ended." in shown.text
    assert "Your password was changed" not in here.get("/account?done=<b>x</b>").text
    assert here.get("/api/v1/session").status_code == 200  # this session stays
    assert elsewhere.get("/api/v1/session").status_code == 401  # the others end
    assert client.post("/api/v1/session", json={"username": "vera", "password": PASSWORD}).status_code == 401
    log_in(client, "vera", new)
    changed = audit_rows(centre, "user.change")
    assert [(e["actor"], e["object"], e["detail"]) for e in changed] == [("user:vera", "vera", {"password": "changed"})]


def test_guessing_the_current_password_locks_the_password_page(client: TestClient, centre: Centre) -> None:
    """Whoever holds a session (left open, or stolen) gets no more guesses at the password than the
    login form gives: five wrong current passwords lock the account for lockout_minutes."""
    make_user(centre, "vera", "viewer", "acme")
    here, csrf = log_in(client, "vera")
    new = "my brand new passphrase"
    for _ in range(centre.config.sessions.max_failed_logins):
        status, text = _change(here, csrf, "a wrong guess at it", new)
        assert status == 400 and "the current password is wrong" in error_of(text)
    status, text = _change(here, csrf, PASSWORD, new)  # the right one, too late
    assert status == 400 and "too many failed logins" in error_of(text)
    # the password page's lock is the account's own; logging in is held per address instead
    # (central/auth/throttle.py), so vera can still log in with her right password
    assert client.post("/api/v1/session", json={"username": "vera", "password": PASSWORD}).status_code == 200
    failures = [e["detail"]["failures"] for e in audit_rows(centre, "password.change_failed")]
    assert failures == list(range(1, centre.config.sessions.max_failed_logins + 1))


def test_own_pages_need_a_login_and_a_session(client: TestClient, centre: Centre) -> None:
    make_user(centre, "vera", "viewer", "acme")
    away = client.get("/account", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/login?next=%2Faccount"
    vera, csrf = log_in(client, "vera")
    key = _bearer(shown_secret(new_key(vera, csrf, "k").text))
    before = snapshot(centre)
    assert client.post("/account/keys", data={"name": "more"}, headers=key).status_code == 403
    assert client.get("/account", headers=key).status_code == 403
    assert snapshot(centre) == before


def test_a_right_current_password_checked_before_the_lock_came_is_refused(centre: Centre) -> None:
    """Guesses sent at once all pass the lock check made before Argon2; the change itself checks the
    lock again under the write lock, so a right guess among them cannot change the password."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from central.auth import users
    from central.db.engine import read_tx, write_tx
    from central.db.schema import users as users_table

    make_user(centre, "vera", "viewer", "acme")
    with read_tx(centre.engine) as conn:
        proof = users.check(users.stored_hash(conn, "vera"), PASSWORD)  # before the lock
    assert proof.ok
    later = datetime.now(timezone.utc)
    with write_tx(centre.engine) as conn:  # meanwhile, the other guesses locked the account
        until = later + timedelta(minutes=15)
        conn.execute(update(users_table).where(users_table.c.username == "vera").values(locked_until=until))
    fresh = users.NewPassword.of("a brand new passphrase", "vera")
    before = snapshot(centre)
    try:
        with write_tx(centre.engine) as conn:
            users.change_own_password(conn, later, "vera", proof, fresh)
    except users.UserError as err:
        assert "too many failed logins" in str(err)
    else:
        raise AssertionError("the password was changed on a locked account")
    assert snapshot(centre) == before


def _key_id_of(page: str) -> str:
    found = re.search(r'name="key_id" value="([^"]+)"', page)
    assert found, "no key id in the account page's form"
    return found.group(1)


def _keys_named(centre: Centre, name: str) -> list[str]:
    with read_tx(centre.engine) as conn:
        return [k["id"] for k in apikeys.list_keys(conn) if k["name"] == name]


def test_a_key_form_sent_twice_makes_one_key_and_says_which(client: TestClient, centre: Centre) -> None:
    """Reloading the answer that showed a secret (or going back, or a double click) sends the same
    form again: it finds the key the first sending made, and shows no second secret."""
    make_user(centre, "vera", "viewer", "acme")
    make_user(centre, "otto", "operator", "acme")
    vera, csrf = log_in(client, "vera")
    otto, otto_csrf = log_in(client, "otto")
    form = vera.get("/account").text
    key_id = _key_id_of(form)
    made = post(vera, csrf, "/account/keys", name="cron", key_id=key_id)
    assert made.status_code == 200
    secret = shown_secret(made.text)
    assert _key_id_of(made.text) != key_id  # the answer's own form makes the next key
    assert _keys_named(centre, "cron") == [key_id]

    before = snapshot(centre)
    again = post(vera, csrf, "/account/keys", name="cron", key_id=key_id)
    assert again.status_code == 409
    said = error_of(again.text)
    assert "This form was already sent: it created the API key 'cron' at " in said
    assert "If you did not copy the secret, revoke that key and create another." in said
    assert '<code class="secret">' not in again.text and secret not in again.text
    renamed = post(vera, csrf, "/account/keys", name="another name", key_id=key_id)
    assert renamed.status_code == 409 and "created the API key 'cron'" in error_of(renamed.text)
    assert snapshot(centre) == before
    assert [e["object"] for e in audit_rows(centre, "apikey.create")] == ["cron"]

    # someone else's key id: refused, and nothing told of it
    taken = post(otto, otto_csrf, "/account/keys", name="mine", key_id=key_id)
    assert taken.status_code == 409
    assert error_of(taken.text) == "This form's key id is already taken; nothing was changed. Use the form below."
    assert "cron" not in taken.text
    for odd in ({}, {"key_id": ""}, {"key_id": "short"}, {"key_id": "-" + key_id[1:]}, {"key_id": key_id + "x"}):
        stale = post(otto, otto_csrf, "/account/keys", name="mine", **odd)
        assert stale.status_code == 400
        assert error_of(stale.text) == "This form is out of date; nothing was changed. Use the form below."
    assert snapshot(centre) == before


def test_a_key_form_sent_twice_at_once_makes_one_key(
    client: TestClient, centre: Centre, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both sendings may look before either inserts; the key's primary key refuses the second, and
    its answer says which key the first made."""
    make_user(centre, "vera", "viewer", "acme")
    vera, csrf = log_in(client, "vera")
    key_id = _key_id_of(vera.get("/account").text)
    assert new_key(vera, csrf, "first").status_code == 200  # a key made in between, by the other sending
    with write_tx(centre.engine) as conn:
        conn.execute(update(api_keys).where(api_keys.c.name == "first").values(id=key_id))
    looked = []
    real_find = apikeys.find

    def not_yet(conn: Any, wanted: str) -> Any:  # the first look happened before the other insert
        looked.append(wanted)
        return None if len(looked) == 1 else real_find(conn, wanted)

    monkeypatch.setattr(apikeys, "find", not_yet)
    before = snapshot(centre)
    late = post(vera, csrf, "/account/keys", name="second", key_id=key_id)
    assert late.status_code == 409 and "it created the API key 'first'" in error_of(late.text)
    assert looked == [key_id, key_id]
    assert snapshot(centre) == before
    assert _keys_named(centre, "second") == []
