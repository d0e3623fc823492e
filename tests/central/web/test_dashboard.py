"""The dashboard in real headless Chromium against a real centre process with real signed nodes."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Dict

import pytest
import requests

from tests.central.web.conftest import SCREENSHOTS, login, make_user
from tests.centre_process import CentreProcess
from tests.e2e.alert_helpers import PLAINTEXT_RULE, evidence_record, judged, remote_node, send_ports

M07_PASSING: Dict[str, Dict[str, Any]] = {
    "firewall": {"active": True, "default_denies": True, "sockets": []},
    "sshd": {"contexts": [], "not_modern": []},
}

SECRET = re.compile(r"\S+")


@pytest.fixture
def centre_process(centre_on_both: CentreProcess) -> CentreProcess:
    """The dashboard's own tests run on SQLite and on PostgreSQL (the other browser tests on SQLite)."""
    return centre_on_both


def _fleet(centre_process: CentreProcess) -> Dict[str, Any]:
    acme, globex = centre_process.token("--tenant", "acme"), centre_process.token("--tenant", "globex")
    web = remote_node(centre_process, "web1.acme.example", acme)
    db = remote_node(centre_process, "db1.acme.example", acme)
    mail = remote_node(centre_process, "mail.globex.example", globex)
    send_ports(web, deviating=True)
    send_ports(db, deviating=False)
    send_ports(mail, deviating=True)
    # db1 passes every M07 rule: the firewall's and sshd's ciphers as well as the ports rules
    for collector, observed in M07_PASSING.items():
        assert db.send(db.report(evidence_record(collector, observed))).status_code == 200
    judged(db.client)
    return {"web": web, "db": db, "mail": mail}


def _rows(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#fleet tbody a.host").all_inner_texts()]


def _wait_for_incident(page: Any, centre_process: CentreProcess, hostname: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page.goto(centre_process.url + "/incidents")
        if page.locator("table.incidents a.host", has_text=hostname).count():
            return
        time.sleep(0.5)
    raise AssertionError(f"no incident for {hostname} appeared on /incidents")


def _export(page: Any, centre_process: CentreProcess, tenant: str, fmt: str) -> str:
    """The auditor's export through the form on /controls, as a real download."""
    page.goto(centre_process.url + "/controls")
    form = page.locator("form#export")
    form.locator("select[name=tenant]").select_option(tenant)
    form.locator("select[name=format]").select_option(fmt)
    with page.expect_download() as download:
        form.locator("button").click()
    assert download.value.suggested_filename.startswith(f"tillsyn-export-{tenant}-")
    assert download.value.suggested_filename.endswith("." + fmt)
    return Path(download.value.path()).read_text(encoding="utf-8")


def _check_export(page: Any, centre_process: CentreProcess) -> None:
    """JSON and CSV name the tenant's nodes and the failing control M07 (accepted by the waiver), nothing else."""
    data = json.loads(_export(page, centre_process, "acme", "json"))
    hosts = {n["hostname"]: n for n in data["nodes"]}
    assert sorted(hosts) == ["db1.acme.example", "web1.acme.example"]
    rule = next(r for r in hosts["web1.acme.example"]["rules"] if r["rule_id"] == PLAINTEXT_RULE)
    assert "M07" in rule["controls"] and rule["status"] == "failing" and rule["accepted_by"]
    text = _export(page, centre_process, "acme", "csv")
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["rule_id"] == PLAINTEXT_RULE]
    assert sorted((r["hostname"], r["status"]) for r in rows) == [
        ("db1.acme.example", "passing"),
        ("web1.acme.example", "failing"),
    ]
    assert all("M07" in r["controls"].split() and r["tenant"] == "acme" for r in rows)
    assert "mail.globex.example" not in text


def test_operator_and_admin_work_through_the_dashboard(centre_process: CentreProcess, browser: Any) -> None:
    nodes = _fleet(centre_process)
    make_user(centre_process, "alice", "admin", "*")
    make_user(centre_process, "otto", "operator", "acme")

    alice = login(browser, centre_process, "alice")
    page = alice["page"]
    assert sorted(_rows(page)) == ["db1.acme.example", "mail.globex.example", "web1.acme.example"]
    assert page.locator("#fleet tr.r-failing").count() == 2
    response = page.request.get(centre_process.url + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"

    # filter by state with the form, then search by hostname
    page.select_option("select[name=state]", "failing")
    page.click("form.filter button")
    page.wait_for_url("**/?q=&state=failing")
    assert sorted(_rows(page)) == ["mail.globex.example", "web1.acme.example"]
    page.fill("input[name=q]", "DB1")
    page.select_option("select[name=state]", "")
    with page.expect_navigation():
        page.click("form.filter button")
    assert _rows(page) == ["db1.acme.example"]
    assert "failing" not in page.locator("#fleet tbody .badge").inner_text()
    page.goto(centre_process.url + "/")
    page.screenshot(path=str(SCREENSHOTS / "fleet.png"), full_page=True)

    # a failing node: the finding, the value seen, the evidence
    page.click("text=web1.acme.example")
    page.wait_for_url(f"**/nodes/{nodes['web'].agent_id}")
    row = page.locator("#findings tr", has_text=PLAINTEXT_RULE)
    assert "failing" in row.locator(".badge").inner_text()
    sentence = row.locator("td").nth(4).inner_text()
    assert "23/tcp" in sentence and '"' not in sentence.split("details (JSON)")[0]  # the sentence leads
    assert not row.locator("pre.json").is_visible()  # the JSON only in a collapsed details element
    row.locator("summary").click()
    assert '"port": 23' in row.locator("pre.json").inner_text()
    history = page.locator("details.history", has_text=PLAINTEXT_RULE).text_content() or ""
    assert "23/tcp" in history  # each change of the rule with its sentence
    assert page.locator("#evidence tr", has_text="ports").count() == 1

    # the incident the failing finding opened; an operator of that tenant acknowledges it
    _wait_for_incident(page, centre_process, "web1.acme.example")
    page.screenshot(path=str(SCREENSHOTS / "incidents.png"), full_page=True)
    otto = login(browser, centre_process, "otto")
    opage = otto["page"]
    assert sorted(_rows(opage)) == ["db1.acme.example", "web1.acme.example"]
    opage.goto(centre_process.url + "/incidents")
    opage.locator("table.incidents tr", has_text="web1.acme.example").locator("td a").first.click()
    opage.wait_for_url("**/incidents/*")
    opage.fill("input[name=note]", "looking at inetd <b>now</b>")
    with opage.expect_navigation():
        opage.click("button:has-text('Acknowledge')")
    assert "by user:otto" in opage.locator("#acknowledged").inner_text()
    assert "23/tcp" in opage.locator("p.lead").inner_text()  # the page leads with the sentence
    assert not opage.locator("#observed pre.json").is_visible()  # the raw JSON stays collapsed
    assert "acknowledged by user:otto: looking at inetd <b>now</b>" in opage.locator("#timeline").inner_text()
    opage.screenshot(path=str(SCREENSHOTS / "incident.png"), full_page=True)

    # an admin waives the finding; the node's page shows it as accepted
    page.goto(centre_process.url + f"/nodes/{nodes['web'].agent_id}")
    page.click("text=waive…")
    page.fill("textarea[name=justification]", "legacy device, replaced in January")
    page.fill("input[name=approver]", "CISO")
    page.fill("input[name=expires_at]", (date.today() + timedelta(days=30)).isoformat())
    page.click("button:has-text('Create waiver')")
    page.wait_for_url(f"**/nodes/{nodes['web'].agent_id}")
    accepted = page.locator("#findings tr", has_text=PLAINTEXT_RULE).locator(".accepted").inner_text()
    assert "accepted: waiver" in accepted and "legacy device" in accepted
    page.screenshot(path=str(SCREENSHOTS / "node.png"), full_page=True)

    page.goto(centre_process.url + "/controls")
    assert page.locator("#controls svg.spark").count() == 13
    assert "33 % of 3" in page.locator("#controls tr", has_text="M07").inner_text()  # db1 passes, two fail
    page.screenshot(path=str(SCREENSHOTS / "controls.png"), full_page=True)
    _check_export(page, centre_process)

    # the audit trail names who did what; its CSV carries the same
    page.goto(centre_process.url + "/admin/audit")
    text = page.locator("#audit").inner_text()
    assert "waiver.create" in text and "incident.ack" in text and "user:otto" in text and "export" in text
    with page.expect_download() as download:
        page.click("text=Download all as CSV")
    csv_text = Path(download.value.path()).read_text(encoding="utf-8")
    assert "waiver.create" in csv_text and "login" in csv_text

    # operators see no audit trail; log out needs the form's CSRF token and ends the session
    opage.goto(centre_process.url + "/admin/audit")
    assert "Admins only" in opage.content()
    opage.click("button:has-text('Log out')")
    opage.wait_for_url("**/login")
    opage.goto(centre_process.url + "/")
    assert "/login" in opage.url
    for run in (alice, otto):
        assert run["dialogs"].seen == [] and run["errors"] == []
        run["context"].close()


def _shown_once(page: Any, box: str) -> str:
    secret: str = page.locator(f"#{box} code.secret").inner_text().strip()
    assert SECRET.fullmatch(secret), secret
    return secret


def test_an_admin_makes_an_account_and_the_viewer_makes_an_api_key(centre_process: CentreProcess, browser: Any) -> None:
    acme = remote_node(centre_process, "web1.acme.example", centre_process.token("--tenant", "acme"))
    send_ports(acme, deviating=True)
    send_ports(
        remote_node(centre_process, "mail.globex.example", centre_process.token("--tenant", "globex")), deviating=False
    )
    make_user(centre_process, "alice", "admin", "*")

    alice = login(browser, centre_process, "alice")
    page = alice["page"]
    page.click("nav >> text=People")
    page.wait_for_url("**/admin/people")
    form = page.locator("form#new-person")
    form.locator("input[name=username]").fill("vera")
    form.locator("input[name=display_name]").fill("Vera <Viewer>")
    form.locator("select[name=role]").select_option("viewer")
    form.locator("input[name=tenants]").fill("acme")
    with page.expect_navigation():
        form.locator("button").click()
    password = _shown_once(page, "new-password")
    assert "vera" in page.locator("#people tr", has_text="Vera <Viewer>").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "people.png"), full_page=True)
    # the last admin cannot step down; the page says why
    page.click("#people >> text=alice")
    page.locator("form#grant select[name=role]").select_option("viewer")
    with page.expect_navigation():
        page.click("button:has-text('Save role and tenants')")
    assert "alice is the last enabled admin" in page.locator(".error").inner_text()

    vera = login(browser, centre_process, "vera", password)
    vpage = vera["page"]
    assert vpage.locator("#fleet tbody a.host").all_inner_texts() == ["web1.acme.example"]
    assert vpage.locator("nav >> text=People").count() == 0
    vpage.click("#my-account")
    vpage.wait_for_url("**/account")
    vpage.fill("form#new-key-form input[name=name]", "vera's report script")
    with vpage.expect_navigation():
        vpage.click("button:has-text('Create API key')")
    secret = _shown_once(vpage, "new-key")
    vpage.screenshot(path=str(SCREENSHOTS / "account.png"), full_page=True)
    nodes = requests.get(
        centre_process.url + "/api/v1/nodes", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert nodes.status_code == 200 and [n["hostname"] for n in nodes.json()] == ["web1.acme.example"]
    vpage.goto(centre_process.url + "/account")  # a GET: the secret is gone
    assert secret not in vpage.content() and "vera's report script" in vpage.locator("#keys").inner_text()

    # the admin sees vera's key among everyone's and revokes it; the key stops working
    page.goto(centre_process.url + "/admin/people")
    row = page.locator("#all-keys tr", has_text="vera's report script")
    assert "vera" in row.inner_text() and "active" in row.inner_text()
    with page.expect_navigation():
        row.locator("button:has-text('Revoke')").click()
    assert "revoked" in page.locator("#all-keys tr", has_text="vera's report script").inner_text()
    gone = requests.get(centre_process.url + "/api/v1/nodes", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert gone.status_code == 401
    page.goto(centre_process.url + "/admin/people/vera")
    page.screenshot(path=str(SCREENSHOTS / "person.png"), full_page=True)
    page.goto(centre_process.url + "/admin/audit")
    trail = page.locator("#audit").inner_text()
    assert "user.create" in trail and "apikey.create" in trail and "apikey.revoke" in trail
    for run in (alice, vera):
        assert run["dialogs"].seen == [] and run["errors"] == []
        run["context"].close()
