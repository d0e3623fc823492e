"""The admins' people pages: create, change, disable, reset, and every refusal changes nothing (M05, M09)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone
from typing import Dict, Tuple

import pytest
from fastapi.testclient import TestClient

from central.auth import apikeys, users
from central.db.engine import read_tx, write_tx
from central.runtime.service import Centre
from tests.central.conftest import snapshot
from tests.central.people import PASSWORD, audit_rows, error_of, log_in, make_user, new_key, post, reset, shown_secret


@pytest.fixture
def admin(client: TestClient, centre: Centre) -> Tuple[TestClient, str]:
    make_user(centre, "alice", "admin", "*")
    return log_in(client, "alice")


def test_an_admin_creates_an_account_with_a_password_shown_once(
    client: TestClient, centre: Centre, admin: Tuple[TestClient, str]
) -> None:
    browser, csrf = admin
    listed = browser.get("/admin/people")
    assert listed.status_code == 200 and 'href="/admin/people/alice"' in listed.text
    created = post(browser, csrf, "/admin/people", username="vera", role="viewer", tenants="acme, globex")
    assert created.status_code == 200 and "Account <strong>vera</strong> created" in created.text
    password = shown_secret(created.text)
    assert len(password) >= 20
    assert password not in browser.get("/admin/people").text  # shown once
    vera, _ = log_in(client, "vera", password)
    me = vera.get("/api/v1/session").json()
    assert (me["role"], me["tenants"]) == ("viewer", ["acme", "globex"])
    # a typed initial password is never shown back
    typed = post(browser, csrf, "/admin/people", username="otto", role="operator", tenants="*", password=PASSWORD)
    assert typed.status_code == 200 and 'class="secret"' not in typed.text
    log_in(client, "otto")
    entries = audit_rows(centre, "user.create")
    assert [(e["actor"], e["object"], e["source"]) for e in entries[-2:]] == [
        ("user:alice", "vera", "testclient"),
        ("user:alice", "otto", "testclient"),
    ]
    assert entries[-2]["detail"] == {"role": "viewer", "tenants": ["acme", "globex"]}


def test_an_admin_changes_role_and_tenants_disables_enables_and_resets(
    client: TestClient, centre: Centre, admin: Tuple[TestClient, str]
) -> None:
    browser, csrf = admin
    make_user(centre, "vera", "viewer", "acme")
    vera, _ = log_in(client, "vera")
    changed = post(browser, csrf, "/admin/people/vera", role="operator", tenants="acme globex")
    assert changed.status_code == 303 and changed.headers["location"] == "/admin/people/vera"
    me = vera.get("/api/v1/session").json()  # her session sees the change at once
    assert (me["role"], me["tenants"]) == ("operator", ["acme", "globex"])

    assert post(browser, csrf, "/admin/people/vera/disable").status_code == 303
    assert vera.get("/api/v1/session").status_code == 401  # the session ended with the account
    assert "disabled" in browser.get("/admin/people/vera").text
    assert post(browser, csrf, "/admin/people/vera/enable").status_code == 303
    vera, _ = log_in(client, "vera")

    answer = reset(browser, csrf, "vera")
    assert answer.status_code == 200 and "their sessions have ended" in answer.text
    new_password = shown_secret(answer.text)
    assert vera.get("/api/v1/session").status_code == 401
    refused = client.post("/api/v1/session", json={"username": "vera", "password": PASSWORD})
    assert refused.status_code == 401
    log_in(client, "vera", new_password)
    typed = reset(browser, csrf, "vera", password="another long password")
    assert typed.status_code == 200 and 'class="secret"' not in typed.text
    log_in(client, "vera", "another long password")

    details = [(e["actor"], e["object"], e["detail"]) for e in audit_rows(centre, "user.change")]
    assert details == [
        ("user:alice", "vera", {"role": "operator", "tenants": ["acme", "globex"]}),
        ("user:alice", "vera", {"disabled": True}),
        ("user:alice", "vera", {"disabled": False}),
        ("user:alice", "vera", {"password": "changed"}),
        ("user:alice", "vera", {"password": "changed"}),
    ]


def test_viewers_and_forged_forms_are_refused_and_change_nothing(
    client: TestClient, centre: Centre, admin: Tuple[TestClient, str]
) -> None:
    browser, csrf = admin
    make_user(centre, "vera", "viewer", "acme")
    vera, vera_csrf = log_in(client, "vera")
    before = snapshot(centre)
    for path in ("/admin/people", "/admin/people/alice"):
        page = vera.get(path)
        assert page.status_code == 403 and "Admins only" in page.text and "needs the admin role" in page.text
    for path in ("/admin/people", "/admin/people/alice", "/admin/people/alice/disable", "/admin/people/alice/password"):
        refused = post(vera, vera_csrf, path, username="eve", role="admin", tenants="*", password="x" * 20)
        assert refused.status_code == 403 and "needs the admin role; vera is viewer" in refused.text
    # an admin's form without the session's CSRF token, or with a wrong one, is refused outright
    forged = browser.post("/admin/people", data={"username": "eve", "role": "admin", "tenants": "*"})
    assert forged.status_code == 403 and forged.json()["error"] == "csrf"
    assert post(browser, "guess", "/admin/people/vera/disable").status_code == 403
    assert snapshot(centre) == before
    # outside a dashboard session (an API key) accounts cannot be managed
    make_key = new_key(browser, csrf, "alice-script")
    key = {"Authorization": "Bearer " + shown_secret(make_key.text)}
    before = snapshot(centre)
    assert client.post("/admin/people/vera/disable", headers=key).status_code == 403
    assert client.get("/admin/people", headers=key).status_code == 403
    assert snapshot(centre) == before


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"username": "Bad Name", "role": "viewer", "tenants": "acme"}, "a username is 2-64 of a-z"),
        ({"username": "alice", "role": "viewer", "tenants": "acme"}, "user 'alice' exists already"),
        ({"username": "vera", "role": "root", "tenants": "acme"}, "role must be one of viewer, operator, admin"),
        ({"username": "vera", "role": "viewer", "tenants": " , "}, "grant at least one tenant"),
        ({"username": "vera", "role": "viewer", "tenants": "a<b"}, "tenant 'a<b': use 1-128 of"),
        ({"username": "vera", "role": "viewer", "tenants": "acme", "password": "short"}, "at least 12 characters"),
        ({"username": "vera", "role": "viewer", "tenants": "acme", "password": "vera-is-my-name"}, "contain the user"),
    ],
)
def test_a_refused_account_says_why_and_changes_nothing(
    centre: Centre, admin: Tuple[TestClient, str], form: Dict[str, str], message: str
) -> None:
    browser, csrf = admin
    before = snapshot(centre)
    refused = post(browser, csrf, "/admin/people", **form)
    assert refused.status_code == 400 and message in error_of(refused.text)
    assert 'class="secret"' not in refused.text and snapshot(centre) == before


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(
    client: TestClient, centre: Centre, admin: Tuple[TestClient, str]
) -> None:
    browser, csrf = admin
    make_user(centre, "bob", "admin", "*")
    with write_tx(centre.engine) as conn:
        users.change(conn, datetime.now(timezone.utc), "test", "bob", disabled=True)  # a disabled admin does not count
    before = snapshot(centre)
    for path, form in (
        ("/admin/people/alice", {"role": "operator", "tenants": "*"}),
        ("/admin/people/alice/disable", {}),
    ):
        refused = post(browser, csrf, path, **form)
        assert refused.status_code == 400
        assert "alice is the last enabled admin: make another person admin first" in error_of(refused.text)
        assert snapshot(centre) == before
    missing = browser.get("/admin/people/nobody")
    assert missing.status_code == 404 and "There is no account &#39;nobody&#39;" in missing.text
    unknown = post(browser, csrf, "/admin/people/nobody", role="viewer", tenants="a")
    assert unknown.status_code == 404 and "There is no account" in unknown.text
    # with a second enabled admin, alice may step down (and then no longer reach the page)
    assert post(browser, csrf, "/admin/people/bob/enable").status_code == 303
    assert post(browser, csrf, "/admin/people/alice", role="viewer", tenants="*").status_code == 303
    assert browser.get("/admin/people").status_code == 403
    bob, bob_csrf = log_in(client, "bob")
    refused = post(bob, bob_csrf, "/admin/people/bob/disable")
    assert refused.status_code == 400 and "bob is the last enabled admin" in error_of(refused.text)


def test_the_navigation_links_people_for_admins_only(
    client: TestClient, centre: Centre, admin: Tuple[TestClient, str]
) -> None:
    browser, _ = admin
    make_user(centre, "vera", "viewer", "acme")
    vera, _ = log_in(client, "vera")
    assert 'href="/admin/people"' in browser.get("/incidents").text
    page = vera.get("/incidents").text
    assert 'href="/admin/people"' not in page and 'href="/account"' in page


def test_an_admin_of_some_tenants_cannot_manage_people_nor_others_keys(
    client: TestClient, centre: Centre, admin: Tuple[TestClient, str]
) -> None:
    """Else they could grant themselves every tenant, or take over an admin who sees them all (M10)."""
    make_user(centre, "acmeadmin", "admin", "acme")
    limited, csrf = log_in(client, "acmeadmin")
    root, root_csrf = admin
    key = new_key(root, root_csrf, "roots-script")
    assert key.status_code == 200
    before = snapshot(centre)
    assert limited.get("/admin/people").status_code == 403
    # the audit trail names every tenant's nodes, waivers and people: not theirs to read either
    for path in ("/admin/audit", "/admin/audit.csv"):
        refused = limited.get(path)
        assert refused.status_code == 403, path
        said = "The audit trail needs an admin of every tenant; acmeadmin is admin of some tenants only."
        assert said in refused.text
        assert "user.create" not in refused.text
    assert root.get("/admin/audit.csv").status_code == 200
    assert post(limited, csrf, "/admin/people/acmeadmin", role="admin", tenants="*").status_code == 403
    assert post(limited, csrf, "/admin/people/alice/password").status_code == 403
    assert post(limited, csrf, "/admin/people", username="mallory", role="admin", tenants="*").status_code == 403
    with read_tx(centre.engine) as conn:
        key_id = next(k["id"] for k in apikeys.list_keys(conn) if k["name"] == "roots-script")
    assert post(limited, csrf, f"/account/keys/{key_id}/revoke").status_code == 404
    assert snapshot(centre) == before


def test_an_empty_username_is_refused_without_hanging(
    client: TestClient, centre: Centre, admin: Tuple[TestClient, str]
) -> None:
    browser, csrf = admin
    before = snapshot(centre)
    refused = post(browser, csrf, "/admin/people", username="   ", role="viewer", tenants="acme")
    assert refused.status_code == 400
    assert snapshot(centre) == before


def test_the_audit_csv_carries_every_entry_newest_first_and_runs_no_formula(
    client: TestClient, centre: Centre, admin: Tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from central import audit
    from central.web import admin as audit_pages

    browser, _ = admin
    with write_tx(centre.engine) as conn:
        for n in range(7):
            audit.record(conn, datetime.now(timezone.utc), "test", "test.entry", f'=HYPERLINK("x",{n})', {"n": n})
        audit.record(conn, datetime.now(timezone.utc), "@evil", "test.entry", "-2+3", None, "+source")
    with read_tx(centre.engine) as conn:
        expected = [str(e["id"]) for e in audit.entries(conn, 1000)]
    assert len(expected) >= 10  # the accounts, alice's login, and the eight above
    monkeypatch.setattr(audit_pages, "CSV_PAGE", 3)  # several pages, the last one short or empty
    answer = browser.get("/admin/audit.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="tillsyn-audit.csv"'
    assert answer.headers["x-content-type-options"] == "nosniff"
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["id", "at", "actor", "action", "object", "detail", "source"]
    assert [r[0] for r in rows[1:]] == expected  # each once, newest first, across the pages
    newest = rows[1]
    assert newest[2:] == ["'@evil", "test.entry", "'-2+3", "", "'+source"]
    assert rows[2][4] == '\'=HYPERLINK("x",6)' and json.loads(rows[2][5]) == {"n": 6}
    monkeypatch.setattr(audit_pages, "CSV_PAGE", len(expected))  # a last page exactly full
    assert [r[0] for r in csv.reader(io.StringIO(browser.get("/admin/audit.csv").text))][1:] == expected


def test_a_reset_form_sent_twice_resets_once(client: TestClient, centre: Centre, admin: Tuple[TestClient, str]) -> None:
    """Reloading the answer that showed a generated password sends the form again: the password
    handed over must stay the one that works, and the person's sessions are not ended twice."""
    browser, csrf = admin
    make_user(centre, "vera", "viewer", "acme")
    form = browser.get("/admin/people/vera").text
    stamp = re.search(r'name="stamp" value="([^"]+)"', form)
    assert stamp
    first = post(browser, csrf, "/admin/people/vera/password", stamp=stamp.group(1))
    assert first.status_code == 200
    handed_over = shown_secret(first.text)
    assert stamp.group(1) not in first.text  # the answer's own form replaces the new password
    vera, _ = log_in(client, "vera", handed_over)

    before = snapshot(centre)
    for sent in ({"stamp": stamp.group(1)}, {"stamp": stamp.group(1), "password": "typed on a reload"}, {}):
        again = post(browser, csrf, "/admin/people/vera/password", **sent)
        assert again.status_code == 409
        assert error_of(again.text) == (
            "The password of vera was changed after this form was shown (sending the form again does that); "
            "nothing was changed. Use the form below to reset it again."
        )
        assert 'class="secret"' not in again.text
    assert snapshot(centre) == before
    assert vera.get("/api/v1/session").status_code == 200  # her session did not end again
    log_in(client, "vera", handed_over)
    assert [e["detail"] for e in audit_rows(centre, "user.change")] == [{"password": "changed"}]
    missing = post(browser, csrf, "/admin/people/nobody/password", stamp=stamp.group(1))
    assert missing.status_code == 404
