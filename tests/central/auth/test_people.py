"""Personal accounts, sessions, CSRF, login throttling, roles and tenant separation (M05, M10)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Dict

from fastapi.testclient import TestClient
from sqlalchemy import select

from central.auth import apikeys, users
from central.db.engine import read_tx, write_tx
from central.db.schema import audit_log, sessions
from central.db.schema import users as users_table
from central.runtime.service import Centre
from tests.central.conftest import Node, new_token

PASSWORD = "a long enough password"


def _user(centre: Centre, name: str, role: str, *tenants: str) -> None:
    with write_tx(centre.engine) as conn:
        users.create(
            conn, datetime.now(timezone.utc), "test", name, PASSWORD[::-1] + str(len(name)), role, list(tenants)
        )


def _key_for(centre: Centre, name: str) -> Dict[str, str]:
    with write_tx(centre.engine) as conn:
        _, secret = apikeys.create(conn, f"{name}-key", datetime.now(timezone.utc), users.user_id_of(conn, name))
    return {"Authorization": f"Bearer {secret}"}


def _browser(client: TestClient) -> TestClient:
    """The same app over https (the session cookie is Secure: a browser sends it over https only)."""
    return TestClient(client.app, base_url="https://testserver")


def _login(client: TestClient, name: str, password: str) -> str:
    response = client.post("/api/v1/session", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
    csrf: str = response.json()["csrf_token"]
    return csrf


def test_passwords_are_hashed_with_argon2_and_never_stored(centre: Centre) -> None:
    _user(centre, "alice", "admin", "*")
    with read_tx(centre.engine) as conn:
        row = conn.execute(select(users_table)).mappings().one()
    assert row["password_hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in row["password_hash"]


def test_a_viewer_of_one_tenant_never_sees_another(client: TestClient, centre: Centre) -> None:
    acme, other = Node(client, hostname="web.acme"), Node(client, hostname="db.globex")
    acme.enrol(new_token(centre, tenant="acme"))
    other.enrol(new_token(centre, tenant="globex"))
    _user(centre, "vera", "viewer", "acme")
    key = _key_for(centre, "vera")
    listed = client.get("/api/v1/nodes", headers=key).json()
    assert [n["hostname"] for n in listed] == ["web.acme"]
    # by URL: another tenant's node is as absent as one that does not exist
    assert client.get(f"/api/v1/nodes/{other.agent_id}", headers=key).status_code == 404
    assert client.get(f"/api/v1/nodes/{acme.agent_id}", headers=key).status_code == 200
    findings = client.get("/api/v1/findings", headers=key).json()
    assert {f["agent_id"] for f in findings} == {acme.agent_id}
    assert client.get(f"/api/v1/findings?node={other.agent_id}", headers=key).json() == []
    # a viewer cannot act: acknowledging, windows and waivers need more
    window = {
        "agent_id": acme.agent_id,
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2099-01-01T00:00:00Z",
        "reason": "x",
    }
    denied = client.post("/api/v1/windows", json=window, headers=key)
    assert denied.status_code == 403 and "needs the operator role; vera is viewer" in denied.json()["message"]


def test_an_operator_acts_only_on_their_tenant(client: TestClient, centre: Centre) -> None:
    other = Node(client, hostname="db.globex")
    other.enrol(new_token(centre, tenant="globex"))
    _user(centre, "otto", "operator", "acme")
    key = _key_for(centre, "otto")
    window = {
        "agent_id": other.agent_id,
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2099-01-01T00:00:00Z",
        "reason": "not mine",
    }
    refused = client.post("/api/v1/windows", json=window, headers=key)
    assert refused.status_code == 400 and f"no node {other.agent_id!r}" in refused.json()["message"]
    group = client.post("/api/v1/windows", json={**window, "agent_id": None, "group": "web"}, headers=key)
    assert group.status_code == 400
    waiver = {
        "tenant": "acme",
        "rule_id": "backup-separate",
        "justification": "j",
        "approver": "a",
        "expires_at": "2099-01-01T00:00:00Z",
    }
    assert client.post("/api/v1/waivers", json=waiver, headers=key).status_code == 403  # admin only
    mine = client.post("/api/v1/windows", json={**window, "agent_id": None, "tenant": "acme"}, headers=key)
    assert mine.status_code == 200, mine.text
    with read_tx(centre.engine) as conn:
        actors = [r.actor for r in conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "window.create"))]
    assert actors == ["user:otto (apikey:otto-key)"]


def test_session_cookie_csrf_and_logout(client: TestClient, centre: Centre) -> None:
    client = _browser(client)
    _user(centre, "alice", "admin", "*")
    csrf = _login(client, "alice", PASSWORD[::-1] + "5")
    me = client.get("/api/v1/session").json()
    assert (me["username"], me["role"], me["tenants"]) == ("alice", "admin", None)
    assert client.get("/api/v1/nodes").status_code == 200  # the cookie is enough to read
    waiver = {
        "tenant": "acme",
        "rule_id": "backup-separate",
        "justification": "rack",
        "approver": "ciso",
        "expires_at": "2099-01-01T00:00:00Z",
    }
    forged = client.post("/api/v1/waivers", json=waiver)  # no CSRF token: a cross-site request
    assert forged.status_code == 403 and forged.json()["error"] == "csrf"
    wrong = client.post("/api/v1/waivers", json=waiver, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    made = client.post("/api/v1/waivers", json=waiver, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 200, made.text
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/api/v1/session").status_code == 401
    with read_tx(centre.engine) as conn:
        assert conn.execute(select(sessions)).all() == []


def test_login_throttling_and_audit(client: TestClient, centre: Centre) -> None:
    _user(centre, "alice", "admin", "*")
    unknown = client.post("/api/v1/session", json={"username": "mallory", "password": "x"})
    wrong = client.post("/api/v1/session", json={"username": "alice", "password": "nope"})
    # the same answer whether or not the user exists
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["message"] == wrong.json()["message"] == "wrong username or password"
    for _ in range(4):
        client.post("/api/v1/session", json={"username": "alice", "password": "nope"})
        client.post("/api/v1/session", json={"username": "mallory", "password": "x"})
    # held from this address, with the right password too, and an unknown name just the same
    locked = client.post("/api/v1/session", json={"username": "alice", "password": PASSWORD[::-1] + "5"})
    ghost = client.post("/api/v1/session", json={"username": "mallory", "password": "x"})
    assert locked.status_code == ghost.status_code == 429
    assert locked.json()["message"] == ghost.json()["message"]
    assert locked.json()["message"].startswith("too many failed logins; try again in 1")
    assert locked.json()["retry_after_s"] > 0
    # alice herself, from her own address, is not held by what another address tried
    elsewhere = TestClient(client.app, client=("192.0.2.10", 50000))
    assert elsewhere.post("/api/v1/session", json={"username": "alice", "password": PASSWORD[::-1] + "5"}).is_success
    with read_tx(centre.engine) as conn:
        actions = [r.action for r in conn.execute(select(audit_log.c.action).order_by(audit_log.c.id))]
    assert actions.count("login.failed") == 10 and actions.count("login.locked") == 2 and actions[-1] == "login"


def test_disabled_account_and_revoked_session(client: TestClient, centre: Centre) -> None:
    client = _browser(client)
    _user(centre, "dora", "viewer", "acme")
    _login(client, "dora", PASSWORD[::-1] + "4")
    assert client.get("/api/v1/nodes").status_code == 200
    with write_tx(centre.engine) as conn:
        users.change(conn, datetime.now(timezone.utc), "test", "dora", disabled=True)
    assert client.get("/api/v1/nodes").status_code == 401  # the session ends with the account
    again = client.post("/api/v1/session", json={"username": "dora", "password": PASSWORD[::-1] + "4"})
    assert again.status_code == 401
