"""What people are told: the rule's title, a sentence with the observed value, what changed on a
resolve, an update when a failing finding turns unknown, and one page per cause (a real clamd)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Tuple

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from central.alerting.channels import build_sender
from central.alerting.dispatch import dispatch_once
from central.alerting.incidents import run_round
from central.alerting.settings import Alerting
from central.db.engine import read_tx, write_tx
from central.db.schema import finding_changes, findings, incident_events, incidents, outbox
from central.erasure.erase import erase
from central.erasure.scrub import MARKER
from central.runtime.service import Centre
from collectors.antivirus import read_system
from collectors.antivirus.collect import collect_with
from evidence.model import Status
from tests.central.alerting.channels.helpers import http_receiver
from tests.central.conftest import Node, evidence_record
from tests.central.people import log_in, make_user
from tests.collectors.antivirus.helpers import FIX, context, make_tree, start_clamd, stop
from tests.conftest import require_tool

SETTINGS = Alerting.model_validate(
    {
        "open_after_s": 0,
        "resolve_after_s": 60,
        "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
        "routes": [{"match": {}, "channels": ["hook"]}],
    }
)
TELNET = {"protocol": "tcp", "address": "0.0.0.0", "port": 23, "exposure": "all", "services": ["telnet"],
          "tags": ["plaintext_remote", "remote_service"], "process": {"name": "telnetd", "pid": 4121}}  # fmt: skip
UNSEEN = {"protocol": "tcp", "address": "0.0.0.0", "port": 2024, "exposure": "all", "services": [],
          "tags": [None], "process": None}  # fmt: skip
RULE = "ports-no-plaintext-remote"


def _round(centre: Centre, now: datetime) -> Any:
    with write_tx(centre.engine) as conn:
        return run_round(conn, SETTINGS, now, centre.policy.policy)


def _incident(centre: Centre, rule: str) -> Dict[str, Any]:
    with read_tx(centre.engine) as conn:
        rows = conn.execute(select(incidents).where(incidents.c.rule_id == rule).order_by(incidents.c.id))
        found = [dict(r) for r in rows.mappings()]
    assert len(found) == 1, found
    return found[0]


def _sent(centre: Centre, incident_id: int) -> List[Tuple[str, str]]:
    with read_tx(centre.engine) as conn:
        rows = conn.execute(select(outbox).where(outbox.c.incident_id == incident_id).order_by(outbox.c.id))
        return [(r.event, r.message) for r in rows]


def _timeline(centre: Centre, incident_id: int) -> List[Tuple[str, str]]:
    with read_tx(centre.engine) as conn:
        rows = conn.execute(
            select(incident_events).where(incident_events.c.incident_id == incident_id).order_by(incident_events.c.id)
        )
        return [(r.kind, r.detail) for r in rows]


def _send(node: Node, collector: str, observed: Dict[str, Any], status: Status = Status.COMPLETE) -> None:
    assert node.send(node.report(evidence_record(collector, observed, status))).status_code == 200


def _since(centre: Centre, node: Node, rule: str) -> datetime:
    with read_tx(centre.engine) as conn:
        since = conn.execute(
            select(findings.c.since).where(findings.c.agent_id == node.agent_id, findings.c.rule_id == rule)
        ).scalar_one()
    moment: datetime = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    return moment


def test_title_sentence_update_on_unknown_and_what_changed(client: TestClient, centre: Centre, node: Node) -> None:
    _send(node, "ports", {"sockets": [TELNET]})
    _round(centre, _since(centre, node, RULE) + timedelta(seconds=1))
    incident = _incident(centre, RULE)
    assert incident["title"] == "No plaintext remote protocol listens beyond loopback"
    assert incident["message"] == "telnetd (pid 4121) listens on 0.0.0.0:23/tcp (telnet, plaintext)"
    assert _sent(centre, incident["id"]) == [("trigger", incident["message"])]

    # telnetd stops, but the owner of another socket cannot be seen: unknown, never passing
    _send(node, "ports", {"sockets": [UNSEEN]}, Status.PARTIAL)
    became_unknown = _since(centre, node, RULE)
    _round(centre, became_unknown)  # (a round's clock ahead of the next report's would hide that report's news)
    _round(centre, became_unknown)  # told once, not every round
    update = (
        "no longer failing; now unknown: cannot tell whether 0.0.0.0:2024/tcp (owner not seen) speaks a "
        "plaintext remote protocol: part of what decides it was not seen"
    )
    assert _sent(centre, incident["id"])[1:] == [("update", update)]
    assert _timeline(centre, incident["id"])[-1] == ("unknown", update)
    assert _incident(centre, RULE)["status"] == "open"

    # it fails again: whoever heard the trigger hears that too
    _send(node, "ports", {"sockets": [TELNET]})
    _round(centre, _since(centre, node, RULE) + timedelta(seconds=1))
    again = "failing again: telnetd (pid 4121) listens on 0.0.0.0:23/tcp (telnet, plaintext)"
    assert _sent(centre, incident["id"])[2:] == [("update", again)]

    # fixed: the resolve notice says what changed, of what had failed
    _send(node, "ports", {"sockets": []})
    _round(centre, _since(centre, node, RULE) + timedelta(seconds=61))
    assert _incident(centre, RULE)["status"] == "resolved"
    assert _sent(centre, incident["id"])[-1] == (
        "resolve",
        "nothing plaintext listens on 0.0.0.0:23/tcp beyond loopback any more",
    )
    kinds = [kind for kind, _ in _timeline(centre, incident["id"])]
    assert kinds == ["detected", "unknown", "failing_again", "resolved"]


CLAMD_CONF = "LocalSocket /run/clamav/clamd.ctl\nDatabaseDirectory /var/lib/clamav\n"


def test_stopping_clamd_pages_once_for_the_cause(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path
) -> None:
    """Real clamd: stopped, antivirus-running fails and its dependents (signatures, real time) page
    nobody; the node page says which rule suppresses them.  Back, the cause resolves, and the
    signatures (this test database is 12 days old) are judged on their own."""
    clamd = require_tool("clamd")
    tree = make_tree(
        tmp_path / "t",
        {
            "/etc/clamav/clamd.conf": CLAMD_CONF,
            "/var/lib/clamav/daily.cvd": FIX / "cvd-header_crafted_daily-27450.bin",
            "/var/lib/clamav/main.cvd": FIX / "cvd-header_clamav-main-57_published-no-stime.bin",
        },
    )
    sock = tree / "run/clamav/clamd.ctl"
    proc = start_clamd(clamd, tmp_path / "work", sock)
    stop(proc)
    stopped = collect_with(context(tree), read_system.list_processes)
    assert stopped.observed["products"][0]["running"] is False
    _send(node, "antivirus", stopped.observed, stopped.status)
    counts = _round(centre, _since(centre, node, "av-running") + timedelta(seconds=1))
    with read_tx(centre.engine) as conn:
        opened = [r.rule_id for r in conn.execute(select(incidents.c.rule_id).where(incidents.c.status == "open"))]
        statuses = dict(conn.execute(select(findings.c.rule_id, findings.c.status)).tuples().all())
    assert statuses["av-signatures-fresh"] == statuses["av-real-time"] == "failing"
    assert opened == ["av-running"] and counts.suppressed == 2
    cause = _incident(centre, "av-running")
    assert (cause["title"], cause["message"]) == (
        "An antivirus or EDR agent is running",
        "ClamAV is installed but not running",
    )

    make_user(centre, "vera", "viewer", "*")
    browser, _csrf = log_in(client, "vera")
    page = browser.get(f"/nodes/{node.agent_id}").text
    assert page.count("suppressed by <code>av-running</code>") == 2
    assert "An antivirus or EDR agent is running" in page

    proc = start_clamd(clamd, tmp_path / "work", sock)
    try:
        back = collect_with(context(tree), read_system.list_processes)
    finally:
        stop(proc)
    assert back.observed["products"][0]["running"] is True
    _send(node, "antivirus", back.observed, back.status)
    _round(centre, _since(centre, node, "av-running") + timedelta(seconds=61))
    assert _incident(centre, "av-running")["status"] == "resolved"
    assert _sent(centre, cause["id"])[-1] == ("resolve", "ClamAV is running again")
    fresh = _incident(centre, "av-signatures-fresh")  # no longer suppressed: its own deviation
    assert fresh["message"].startswith("ClamAV signatures were built ")
    assert fresh["message"].endswith(" days ago (limit 48 h)")
    assert "suppressed by" not in browser.get(f"/nodes/{node.agent_id}").text


def test_each_notification_carries_its_own_sentence_to_the_receiver(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path
) -> None:
    """Through the outbox to a real webhook receiver: trigger, update and resolve each say theirs."""
    secret = tmp_path / "hook.key"
    secret.write_text("s3cret-hmac-key")
    with http_receiver() as rx:
        settings = Alerting.model_validate(
            {
                "open_after_s": 0,
                "resolve_after_s": 60,
                "channels": {"hook": {"type": "webhook", "url": rx.url, "secret_file": str(secret)}},
                "routes": [{"channels": ["hook"]}],
            }
        )
        senders = {name: build_sender(name, channel) for name, channel in settings.channels.items()}

        def step(observed: Dict[str, Any], status: Status, after_s: float) -> None:
            _send(node, "ports", observed, status)
            with write_tx(centre.engine) as conn:
                run_round(conn, settings, _since(centre, node, RULE) + timedelta(seconds=after_s), centre.policy.policy)
                # a round run ahead of the clock (to let the fix settle) queues its notices then: due now
                conn.execute(
                    update(outbox).where(outbox.c.sent_at.is_(None)).values(next_attempt_at=datetime.now(timezone.utc))
                )
            dispatch_once(centre.engine, settings, senders)

        step({"sockets": [TELNET]}, Status.COMPLETE, 0)
        step({"sockets": [UNSEEN]}, Status.PARTIAL, 0)
        step({"sockets": []}, Status.COMPLETE, 61)
        bodies = [json.loads(r.body) for r in rx.requests]
    said = [
        (b["event"], b["incident"]["title"], b["incident"]["message"])
        for b in bodies
        if b["incident"]["rule_id"] == RULE
    ]
    title = "No plaintext remote protocol listens beyond loopback"
    assert said == [
        ("trigger", title, "telnetd (pid 4121) listens on 0.0.0.0:23/tcp (telnet, plaintext)"),
        ("update", title, "no longer failing; now unknown: cannot tell whether 0.0.0.0:2024/tcp (owner not seen) "
                          "speaks a plaintext remote protocol: part of what decides it was not seen"),
        ("resolve", title, "nothing plaintext listens on 0.0.0.0:23/tcp beyond loopback any more"),
    ]  # fmt: skip


def test_erasing_a_node_takes_the_name_out_of_what_people_were_told(centre: Centre, node: Node) -> None:
    """An incident's sentence, each notification's and the timeline's name the account; erasure
    (GDPR art. 17) takes the name out of all of them and out of the finding's history."""
    rule = "accounts-no-extra-uid0"
    anna = {"user": "anna", "uid": 0, "shell": "/bin/bash", "password": "hashed", "personal": True, "dormant": False}
    _send(node, "accounts", {"accounts": [anna], "duplicate_uids": [], "sudo_rules": []})
    _round(centre, _since(centre, node, rule) + timedelta(seconds=1))
    incident = _incident(centre, rule)
    said = "account anna has user id 0, the powers of root (shell /bin/bash)"
    assert incident["message"] == said and _sent(centre, incident["id"]) == [("trigger", said)]
    with write_tx(centre.engine) as conn:
        erase(conn, node.agent_id, "GDPR-15", "cli:test", datetime.now(timezone.utc), "cli")
    told = [_incident(centre, rule)["message"], *(m for _, m in _sent(centre, incident["id"]))]
    told += [detail for _, detail in _timeline(centre, incident["id"])]
    with read_tx(centre.engine) as conn:  # and the finding's history, which the auditor's export reads
        told += conn.execute(select(finding_changes.c.message).where(finding_changes.c.rule_id == rule)).scalars().all()
    assert told and not [text for text in told if "anna" in (text or "")], told
    assert told[0] == f"account {MARKER} has user id 0, the powers of root (shell /bin/bash)"
