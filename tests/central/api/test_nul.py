"""A NUL character anywhere a request can carry text, against a real ``tillsyn-central serve`` on
SQLite and on PostgreSQL: refused alike on both (PostgreSQL cannot store NUL in text, and answered
500 for one in a path or a body; SQLite read a search for ``%00`` as a match for everything)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.central.api.helpers import enrolled_node, serving
from tests.centre_process import CentreProcess

WINDOW = {"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z", "reason": "kernel update"}


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[CentreProcess]:
    with serving(CentreProcess(tmp_path / "centre", database_url=database_url)) as centre:
        yield centre


def test_a_nul_in_a_query_a_path_or_a_body_is_refused_on_either_database(served: CentreProcess) -> None:
    node = enrolled_node(served)
    key = served.api_key()
    url = served.url
    assert len(requests.get(url + "/api/v1/nodes", headers=key, timeout=10).json()) == 1
    for query in ("search=%00", "search=web%00", "state=%00", "%00=x"):
        answer = requests.get(f"{url}/api/v1/nodes?{query}", headers=key, timeout=10)
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["error"] == "malformed" and "contains a NUL character" in answer.json()["message"]
    for method, path in [
        ("GET", "/api/v1/nodes/%00"),
        ("GET", f"/api/v1/nodes/{node.agent_id}%00"),
        ("POST", "/api/v1/windows/%00/cancel"),
        ("POST", "/api/v1/waivers/a%00b/revoke"),
        ("GET", "/nodes/%00"),
    ]:
        answer = requests.request(method, url + path, headers=key, timeout=10)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json() == {
            "error": "malformed",
            "message": f"the path {path} contains a NUL character",
        }, path
    bodies = [
        ("/api/v1/session", {"username": "a\u0000b", "password": "a long enough passphrase"}, "username"),
        ("/api/v1/windows", {**WINDOW, "agent_id": node.agent_id, "reason": "kernel\u0000update"}, "reason"),
        ("/api/v1/enrol", {"token": "t\u0000", "public_key": "k", "hostname": "h", "machine_id": "m"}, "token"),
        ("/api/v1/windows", {**WINDOW, "allows": ["a", "b\u0000"]}, "allows[1]"),
    ]
    for path, body, where in bodies:
        answer = requests.post(url + path, json=body, headers=key, timeout=10)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json() == {
            "error": "malformed",
            "message": f"request body: {where} contains a NUL character (\\u0000)",
        }, path
    form = requests.post(
        url + "/login",
        data="username=a%00b&password=guess&login_token=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert form.status_code == 400, form.text
    assert form.json()["message"] == "request body: username contains a NUL character (\\u0000)"
    # a backslash followed by u0000 is text, not a NUL: stored and served
    literal = {**WINDOW, "agent_id": node.agent_id, "reason": "C:\\u0000"}
    kept = requests.post(url + "/api/v1/windows", json=literal, headers=key, timeout=10)
    assert kept.status_code == 200, kept.text
    windows = requests.get(url + "/api/v1/windows", headers=key, timeout=10).json()
    assert [w["reason"] for w in windows] == ["C:\\u0000"]
    assert requests.get(f"{url}/api/v1/nodes?search=web", headers=key, timeout=10).status_code == 200
    assert "Traceback" not in (served.state / "central.log").read_text()
