"""Logins held per address and name against a real ``tillsyn-central serve`` on SQLite and on
PostgreSQL: known and unknown names are answered alike, and a person logging in from elsewhere is
not held by another's guesses."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any, Dict, Tuple

from tests.centre_process import CentreProcess


def _login(centre: CentreProcess, source: str, username: str, password: str) -> Tuple[int, Dict[str, Any]]:
    """POST /api/v1/session from ``source`` (any 127.0.0.0/8 address reaches the loopback centre)."""
    conn = http.client.HTTPConnection("127.0.0.1", centre.port, timeout=10, source_address=(source, 0))
    try:
        body = json.dumps({"username": username, "password": password})
        conn.request("POST", "/api/v1/session", body, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_logins_are_held_per_address_alike_for_known_and_unknown_names(tmp_path: Path, database_url: str) -> None:
    centre = CentreProcess(tmp_path / "centre", database_url=database_url)
    centre.cli("db", "upgrade")
    password = tmp_path / "password"
    password.write_text("a long enough passphrase of hers\n")
    centre.cli("user", "create", "alice", "--role", "admin", "--tenant", "*", "--password-file", str(password))
    centre.start()
    try:
        attacker, alice = "127.0.0.2", "127.0.0.3"
        seen = {
            name: [_login(centre, attacker, name, "wrong guess number one") for _ in range(6)]
            for name in ("alice", "nobody")
        }
        for name, answers in seen.items():
            assert [status for status, _ in answers] == [401] * 5 + [429], (name, answers)
        alike = {
            name: [(s, {k: v for k, v in a.items() if k != "retry_after_s"}) for s, a in seen[name]] for name in seen
        }
        assert alike["alice"] == alike["nobody"]  # the same answers, word for word
        # the right password from the attacker's address is held too, but alice's own address is not
        assert _login(centre, attacker, "alice", "a long enough passphrase of hers")[0] == 429
        assert _login(centre, alice, "alice", "a long enough passphrase of hers")[0] == 200
        # one address trying many names is held after max_failed_logins_per_address (20), for every name:
        # 10 wrong logins so far, 10 more allowed
        statuses = [_login(centre, attacker, f"user{i}", "guess")[0] for i in range(12)]
        assert statuses == [401] * 10 + [429] * 2, statuses
        status, answer = _login(centre, attacker, "someone-new", "guess")
        assert status == 429 and "from your address" in answer["message"]
        assert _login(centre, alice, "alice", "a long enough passphrase of hers")[0] == 200
    finally:
        centre.stop()
