"""People in the in-process centre's tests: accounts made directly, a logged-in browser (TestClient)
with its CSRF token, forms posted, what a page shows."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Tuple

from fastapi.testclient import TestClient
from sqlalchemy import select

from central.auth import users
from central.db.engine import read_tx, write_tx
from central.db.schema import audit_log
from central.runtime.service import Centre

PASSWORD = "a long enough password"


def make_user(centre: Centre, name: str, role: str, *tenants: str) -> None:
    with write_tx(centre.engine) as conn:
        users.create(conn, datetime.now(timezone.utc), "test", name, PASSWORD, role, list(tenants))


def log_in(client: TestClient, name: str, password: str = PASSWORD) -> Tuple[TestClient, str]:
    """A browser of its own (cookies over https, as the Secure cookie needs) and its CSRF token."""
    browser = TestClient(client.app, base_url="https://testserver")
    response = browser.post("/api/v1/session", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return browser, str(response.json()["csrf_token"])


def post(browser: TestClient, csrf: str, path: str, **form: str) -> Any:
    return browser.post(path, data={"csrf_token": csrf, **form}, follow_redirects=False)


def new_key(browser: TestClient, csrf: str, name: str) -> Any:
    """Create a personal API key as the browser does: with the key id the account page minted."""
    found = re.search(r'name="key_id" value="([^"]+)"', browser.get("/account").text)
    assert found, "no key id in the account page's form"
    return post(browser, csrf, "/account/keys", name=name, key_id=found.group(1))


def reset(browser: TestClient, csrf: str, username: str, **form: str) -> Any:
    """Reset a password as the browser does: with the stamp of the password the form replaces."""
    found = re.search(r'name="stamp" value="([^"]+)"', browser.get(f"/admin/people/{username}").text)
    assert found, "no password stamp in the reset form"
    return post(browser, csrf, f"/admin/people/{username}/password", stamp=found.group(1), **form)


def shown_secret(page: str) -> str:
    found = re.search(r'<code class="secret">([^<]+)</code>', page)
    assert found, "no secret shown"
    return html.unescape(found.group(1))


def error_of(page: str) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]+)</p>', page)
    assert found, "no error shown"
    return html.unescape(found.group(1))


def audit_rows(centre: Centre, prefix: str) -> List[Dict[str, Any]]:
    with read_tx(centre.engine) as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action.like(prefix + "%")).order_by(audit_log.c.id))
        return [dict(r) for r in rows.mappings()]
