"""The centre's own measures end to end (docs/controls.md, "The centre's own measures"): a real
``tillsyn-central serve`` with a webhook channel that is down, a real agent daemon enrolled
without a tenant and with pseudonymisation off, and a signed node helper that plays an older
agent.  M10, M12 and M13 are read where a person reads them: the findings, ``GET
/api/v1/controls/status`` and the export, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
import yaml

from tests.centre_process import CentreProcess
from tests.e2e.alert_helpers import (
    PLAINTEXT_RULE,
    Hook,
    api,
    centre_yaml,
    dashboard_page,
    evidence_record,
    judged,
    query,
    remote_node,
    send_ports,
    webhook,
    write_key,
)
from tests.e2e.conftest import fresh_pg_database
from tests.e2e.harness import AgentProcess, agent_yaml, wait_until

NOTIFY_S = 10
"""The notification target under test (the smallest central.yaml accepts)."""


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[Optional[str]]:
    if request.param == "sqlite":
        yield None
        return
    yield from fresh_pg_database()


def _findings(centre: CentreProcess, rule: str) -> Dict[str, Dict[str, Any]]:
    rows = query(centre, "SELECT agent_id, status, message, observed FROM findings WHERE rule_id = :r", r=rule)
    return {r["agent_id"]: r for r in rows}


def _finding(centre: CentreProcess, rule: str, agent_id: str) -> Dict[str, Any]:
    return _findings(centre, rule).get(agent_id) or {}


def _finding_saying(centre: CentreProcess, rule: str, agent_id: str, words: str, seconds: float) -> Dict[str, Any]:
    """The node's finding of ``rule`` once its sentence has ``words`` in it (judged every judge_every_s)."""

    def saying() -> Dict[str, Any]:
        found = _finding(centre, rule, agent_id)
        return found if words in found.get("message", "") else {}

    row: Dict[str, Any] = wait_until(
        saying, seconds, lambda: f"{rule} saying {words!r}, have {_finding(centre, rule, agent_id)}"
    )
    return row


def _execute(centre: CentreProcess, sql: str, **params: Any) -> None:
    from sqlalchemy import create_engine, text

    from tests.e2e.alert_helpers import db_url

    url = db_url(centre).replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def _status(rows: List[Dict[str, Any]], control: str, tenant: Optional[str]) -> Dict[str, Any]:
    [row] = [r for r in rows if r["control"] == control and r["tenant"] == tenant]
    return row


def test_a_channel_down_until_the_target_passed_fails_m12_and_the_export_lists_its_times(
    tmp_path: Path, database: Optional[str]
) -> None:
    key = write_key(tmp_path)
    hook = Hook()  # nothing listens yet: every delivery fails
    extra = centre_yaml(
        channels={"hook": webhook(hook.url, key)},
        routes=[{"match": {"rules": [PLAINTEXT_RULE]}, "channels": ["hook"]}],
        resolve_after_s=0,
    ) + yaml.safe_dump({"measures": {"notify_within_s": NOTIFY_S}})
    centre = CentreProcess(tmp_path / "centre", extra_yaml=extra, database_url=database).start(wait=90)
    try:
        node = remote_node(centre, token=centre.token("--tenant", "acme"))
        rule = "centre-incident-notification"
        # before any incident the measure passes (a channel is configured)
        wait_until(
            lambda: _finding(centre, rule, node.agent_id).get("status") == "passing",
            20,
            lambda: f"M12 passing with no incident, have {_finding(centre, rule, node.agent_id)}",
        )
        send_ports(node, deviating=True)
        [incident] = wait_until(
            lambda: query(centre, "SELECT id FROM incidents WHERE rule_id = :r", r=PLAINTEXT_RULE), 10, "the incident"
        )
        number = incident["id"]
        late = wait_until(
            lambda: (
                _finding(centre, rule, node.agent_id).get("status") == "failing"
                and _finding(centre, rule, node.agent_id)
            ),
            NOTIFY_S + 20,
            lambda: f"M12 failing once the target passed, have {_finding(centre, rule, node.agent_id)}",
        )
        assert f"incident {number} has not been notified" in late["message"], late["message"]
        assert f"(target {NOTIFY_S} s)" in late["message"], late["message"]
        assert "channel hook's last delivery failed (" in late["message"], late["message"]

        key_header = centre.api_key()
        status = _status(api(centre, key_header, "GET", "/api/v1/controls/status"), "M12", "acme")
        assert status["status"] == "failing" and status["nodes"]["failing"] == 1, status
        assert any(f"incident {number}" in m for m in status["failing"]), status

        # The receiver comes back: delivered late, and the measure keeps saying how late.
        hook.start()
        delivered = _finding_saying(centre, rule, node.agent_id, "was first notified", 30)
        assert delivered["status"] == "failing", delivered
        assert f"incident {number} was first notified " in delivered["message"], delivered["message"]
        assert "last delivery failed" not in delivered["message"], delivered["message"]

        exported = centre.cli("export", "report", "--format", "json", "--tenant", "acme")
        data = json.loads(exported.stdout)
        [listed] = [i for i in data["incidents"] if i["id"] == number]
        assert listed["notified_after_s"] > NOTIFY_S, listed
        assert listed["first_notified_at"] and listed["acknowledged_after_s"] is None, listed
        m12 = next(c for c in data["controls"] if c["id"] == "M12")
        assert m12["counts"]["failing"] == 1, m12
    finally:
        hook.stop()
        centre.stop()


def test_an_untenanted_agent_without_pseudonyms_and_an_older_agent(tmp_path: Path, database: Optional[str]) -> None:
    extra = "duty_interval_s: 1\nheartbeat_interval_s: 5\n"
    centre = CentreProcess(tmp_path / "centre", extra_yaml=extra, database_url=database).start(wait=90)
    agent = AgentProcess(tmp_path / "node", agent_yaml() + "privacy: {pseudonymise: false}\n")
    try:
        # a real agent daemon, enrolled with a token that names no tenant
        agent_id = agent.enrol(centre)
        agent.start()
        # an older agent: a signed node that reports no privacy setting, in tenant acme
        older = remote_node(centre, hostname="old.example.net", token=centre.token("--tenant", "acme"))
        older.send(older.report())

        m13 = wait_until(
            lambda: (
                _finding(centre, "centre-pseudonyms", agent_id).get("status") == "failing"
                and _finding(centre, "centre-pseudonyms", agent_id)
            ),
            30,
            lambda: f"M13 failing for the agent, have {_finding(centre, 'centre-pseudonyms', agent_id)}",
        )
        assert "sends usernames in clear (pseudonymisation is off)" in m13["message"], m13
        unknown = wait_until(lambda: _finding(centre, "centre-pseudonyms", older.agent_id), 20, "the older node judged")
        assert unknown["status"] == "unknown", unknown
        assert "does not report whether it pseudonymises usernames" in unknown["message"], unknown

        key = centre.api_key()
        assert _status(api(centre, key, "GET", "/api/v1/controls/status"), "M13", "default")["status"] == "failing"
        # enrolled without a tenant, the node joined central.yaml's default tenant (issue #15)
        m10 = _finding(centre, "centre-tenant-separation", agent_id)
        assert m10["status"] == "passing" and "belongs to tenant default" in m10["message"], m10
        # a node whose tenant is gone all the same (a row edited by hand) fails separation
        _execute(centre, "UPDATE agents SET tenant = NULL WHERE id = :a", a=agent_id)
        untenanted = wait_until(
            lambda: (
                _finding(centre, "centre-tenant-separation", agent_id).get("status") == "failing"
                and _finding(centre, "centre-tenant-separation", agent_id)
            ),
            20,
            "M10 failing for a node without a tenant",
        )
        assert untenanted["message"].startswith("node ") and "belongs to no tenant" in untenanted["message"]
        tenanted = _finding(centre, "centre-tenant-separation", older.agent_id)
        assert tenanted["status"] == "passing", tenanted
        assert tenanted["message"] == "node old.example.net belongs to tenant acme, seen by nobody", tenanted

        # a viewer granted every tenant fails separation on every node
        password = tmp_path / "password"
        password.write_text("a long enough password 1\n")
        centre.cli("user", "create", "vera", "--role", "viewer", "--tenant", "*", "--password-file", str(password))
        wide = wait_until(
            lambda: (
                _finding(centre, "centre-tenant-separation", older.agent_id).get("status") == "failing"
                and _finding(centre, "centre-tenant-separation", older.agent_id)
            ),
            20,
            "M10 failing for a viewer holding every tenant",
        )
        assert wide["message"] == "vera (viewer, every tenant) sees every tenant without being an admin", wide

        rows = api(centre, key, "GET", "/api/v1/controls/status")
        assert _status(rows, "M13", "acme")["status"] == "unknown"
        assert _status(rows, "M10", "acme")["status"] == "failing"
        assert requests.get(centre.url + "/api/v1/controls/status", timeout=10).status_code == 401
    finally:
        agent.stop()
        centre.stop()


ANNA_PORTS = {
    "sockets": [
        {
            "protocol": "tcp",
            "address": "127.0.0.1",
            "port": 2323,
            "exposure": "loopback",
            "tags": [],
            "services": [],
            "process": {"name": "telnetd", "exe": "/home/anna/bin/telnetd", "user": "anna", "pid": 4242},
        }
    ]
}


OWN = {
    "M08": "centre-retention-erasure",
    "M10": "centre-tenant-separation",
    "M12": "centre-incident-notification",
    "M13": "centre-pseudonyms",
}


def _shown_everywhere(centre: CentreProcess, tmp_path: Path, sentence: str) -> None:
    """The four own measures where a person reads them: the Controls page and its 30-day chart, a
    control's page, and the export as CSV, HTML and PDF (M08 failing on one node of two)."""
    password = "a long enough password for the dashboard"
    (tmp_path / "password").write_text(password + "\n")
    centre.cli(
        "user", "create", "ada", "--role", "admin", "--tenant", "*", "--password-file", str(tmp_path / "password")
    )
    page = html.unescape(dashboard_page(centre, "ada", password, "/controls"))
    # M12 is unknown on a node (no channel) until its first incident opens, then passing (within the
    # target); M13 is unknown for nodes that do not report their privacy setting: judged, not passing
    for control, today in (("M08", "50 %"), ("M10", "100 %"), ("M12", r"\d+ %"), ("M13", "0 %")):
        assert re.search(f"<title>{control}: {today} passing today</title>", page), page
    assert "no evidence" not in page, page
    assert sentence in html.unescape(dashboard_page(centre, "ada", password, "/controls/M08"))

    table = centre.cli("export", "report", "--all-tenants", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    for control, rule in OWN.items():
        mine = [r for r in rows if r["rule_id"] == rule]
        assert len(mine) == 2 and all(r["controls"] == control for r in mine), (rule, mine)
    assert sorted(r["status"] for r in rows if r["rule_id"] == OWN["M08"]) == ["failing", "passing"]
    printable = html.unescape(centre.cli("export", "report", "--all-tenants", "--format", "html").stdout)
    # each node's row of each own measure with its status and what was seen: the sentence recorded
    # when its status last changed (docs/audit-export.md). The erased node's M08 turned passing before
    # its request GDPR-17 was carried out (the test waits for that order), so its row does not name it.
    for control, rule in OWN.items():
        assert printable.count(f"<td>{rule}</td><td>{control}</td>") == 2, (rule, printable[:3000])
    row = f'<td>{OWN["M08"]}</td><td>M08</td>\n<td class="(\\w+)">\\w+</td><td>[^<]*</td><td>([^<]*)</td>'
    seen = dict(re.findall(row, printable))
    assert seen["failing"] == sentence, seen
    assert seen["passing"].endswith("'s reports are kept 400 days, none older; the retention duty runs on time"), seen
    assert f"<p>{sentence}</p>" in printable  # the incident M08 opened, with its sentence
    pdf = tmp_path / "export.pdf"
    centre.cli("export", "report", "--all-tenants", "--format", "pdf", "-o", str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF")  # printed from the same HTML by Chromium (central/export/pdf.py)


def test_an_erased_node_still_verifies_and_an_overdue_request_fails_m08(
    tmp_path: Path, database: Optional[str]
) -> None:
    extra = "duty_interval_s: 1\nheartbeat_interval_s: 5\nsessions: {secure_cookie: false}\n"
    centre = CentreProcess(tmp_path / "centre", extra_yaml=extra, database_url=database).start(wait=90)
    try:
        node = remote_node(centre, token=centre.token("--tenant", "acme"))
        for _ in range(3):  # a chain of several entries, each with the person's name in it
            response = node.send(node.report(evidence_record("ports", ANNA_PORTS)))
            assert response.status_code == 200, response.text
        other = remote_node(centre, hostname="db1.example.net", token=centre.token("--tenant", "acme"))
        assert other.send(other.report()).status_code == 200
        judged(node.client)
        # The node's first M08 verdict (every judge_every_s) before the erasure, so the order is the
        # same on a busy machine: the erasure then changes the finding's sentence, not its status.
        rule = "centre-retention-erasure"
        wait_until(
            lambda: _finding(centre, rule, node.agent_id).get("status") == "passing",
            20,
            lambda: f"M08 judged for the node before the erasure, have {_finding(centre, rule, node.agent_id)}",
        )

        said = centre.cli("node", "erase", node.agent_id, "--request", "GDPR-17").stdout
        assert "personal value(s) erased from 3 report(s)" in said and "request GDPR-17" in said, said
        bodies = query(centre, "SELECT agent_id, body, erased_sha256 FROM reports WHERE agent_id = :a", a=node.agent_id)
        assert len(bodies) == 3 and all(r["erased_sha256"] for r in bodies)
        assert not any(b"anna" in bytes(r["body"]) for r in bodies)
        latest = query(centre, "SELECT record FROM latest_evidence WHERE agent_id = :a", a=node.agent_id)
        assert "anna" not in json.dumps([r["record"] for r in latest])
        audit = query(centre, "SELECT actor, object FROM audit_log WHERE action = 'node.erase'")
        assert audit == [{"actor": audit[0]["actor"], "object": node.agent_id}] and audit[0]["actor"].startswith("cli:")

        checked = centre.cli("verify", check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "verified 2 node chain(s): all intact" in checked.stdout, checked.stdout
        assert "3 report(s)' signatures not checkable: erased on " in checked.stdout, checked.stdout
        assert "by request GDPR-17" in checked.stdout, checked.stdout

        exported = tmp_path / "export.json"
        centre.cli("export", "report", "--all-tenants", "--format", "json", "--with-evidence", "-o", str(exported))
        against = centre.cli("export", "verify", str(exported), check=False)
        assert against.returncode == 0, against.stdout + against.stderr
        alone = centre.cli("export", "verify", "--offline", str(exported), check=False)
        assert alone.returncode == 0, alone.stdout + alone.stderr
        assert "signature not checkable: personal data erased on request" in alone.stdout + alone.stderr

        # a request recorded long ago and never carried out is overdue
        centre.cli(
            "node", "erase-request", "db1.example.net", "--request", "OLD-1", "--requested-at", "2026-08-01T09:00:00Z"
        )
        late = wait_until(
            lambda: (
                _finding(centre, rule, other.agent_id).get("status") == "failing"
                and _finding(centre, rule, other.agent_id)
            ),
            20,
            lambda: f"M08 failing for the overdue request, have {_finding(centre, rule, other.agent_id)}",
        )
        assert late["message"] == "erasure request OLD-1 of 2026-08-01 is not carried out; it was due 2026-10-30", late
        # each node is judged in its own slice of the duty rounds (by a hash of its id), so the erased
        # node's verdict may come a round before or after the other node's
        done = _finding_saying(centre, rule, node.agent_id, "erasure request GDPR-17 carried out", 20)
        assert done["status"] == "passing", done
        assert "reports are kept 400 days, none older; the retention duty runs on time" in done["message"], done
        _shown_everywhere(centre, tmp_path, late["message"])
        refused = centre.cli("node", "erase", "no-such-node", check=False)
        assert refused.returncode != 0 and "no node 'no-such-node'" in refused.stderr, refused.stderr
    finally:
        centre.stop()
