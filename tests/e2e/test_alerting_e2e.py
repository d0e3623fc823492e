"""Alerting end to end: real ``tillsyn-central serve`` processes with an ``alerting:`` section,
real receivers (a signed-webhook server, aiosmtpd, Debian's prometheus-alertmanager), nodes that
are real agent daemons (the UPS test) or signed ``Node`` helpers over real HTTP.

Each test proves one promise of docs/alerting.md: a receiver that is down delays its
notifications, never loses them; a SIGKILLed centre loses nothing; two centres on one
PostgreSQL send each notification once; flapping pages nobody; a waiver ends by itself; a
maintenance window holds alerts until it ends or is cancelled, an acknowledgement stops
reminders and every change is in the audit trail.  Timings: duties every 1 s, the outbox every
0.5 s, retries at most 5 s apart.
"""

from __future__ import annotations

import email.message
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import requests

from tests.central.alerting.channels.helpers import PASSWORD, USER, alertmanager, make_pki, smtp_server
from tests.centre_process import CentreProcess
from tests.collectors.power.helpers import ON_BATTERY, ON_LINE, Nut, nut, set_ups  # noqa: F401  (nut: the fixture)
from tests.e2e.alert_helpers import (
    PLAINTEXT_RULE,
    Hook,
    api,
    centre_yaml,
    query,
    remote_node,
    send_ports,
    webhook,
    write_key,
)
from tests.e2e.harness import AgentProcess, agent_yaml, wait_until

PLAINTEXT_ONLY = [{"match": {"rules": [PLAINTEXT_RULE]}, "channels": ["hook"]}]


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., CentreProcess]]:
    """Centre processes made by the test; every one is stopped at the end, even on failure."""
    made: List[CentreProcess] = []

    def start(name: str = "centre", database_url: str | None = None, **yaml_args: Any) -> CentreProcess:
        process = CentreProcess(tmp_path / name, extra_yaml=centre_yaml(**yaml_args), database_url=database_url)
        made.append(process)
        return process.start()

    yield start
    for process in made:
        process.stop()


@pytest.fixture
def hooks() -> Iterator[List[Hook]]:
    made: List[Hook] = []
    yield made
    for hook in made:
        hook.stop()


def _outbox(centre: CentreProcess) -> List[Dict[str, Any]]:
    return query(centre, "SELECT * FROM outbox ORDER BY id")


def _timeline(centre: CentreProcess, incident_id: int) -> List[str]:
    rows = query(centre, "SELECT kind FROM incident_events WHERE incident_id = :i ORDER BY id", i=incident_id)
    return [r["kind"] for r in rows]


def _when(value: Any) -> datetime:
    """A time read back from either database (SQLite gives text through ``text()``)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _incidents(centre: CentreProcess, rule: str = PLAINTEXT_RULE) -> List[Dict[str, Any]]:
    return query(centre, "SELECT * FROM incidents WHERE rule_id = :r ORDER BY id", r=rule)


# --- 1. a receiver that is down and comes back ----------------------------------------------------------


def test_a_receiver_down_delays_its_notifications_and_never_loses_them(
    tmp_path: Path, started: Callable[..., CentreProcess], hooks: List[Hook]
) -> None:
    key = write_key(tmp_path)
    late = Hook()  # nothing listens on its port yet
    other = Hook().start()
    hooks.extend([late, other])
    centre = started(
        channels={"hook": webhook(late.url, key), "other": webhook(other.url, key)},
        routes=[{"match": {"rules": [PLAINTEXT_RULE]}, "channels": ["hook", "other"]}],
        resolve_after_s=0,
    )
    node = remote_node(centre)
    send_ports(node, deviating=True)

    # The other channel hears at once; the down one is tried, fails, and is retried.
    wait_until(lambda: other.kinds() == ["trigger"], 10, lambda: f"the up channel's trigger, have {other.kinds()}")
    wait_until(
        lambda: any(r["channel"] == "hook" and r["attempts"] >= 2 for r in _outbox(centre)),
        20,
        lambda: f"two failed attempts at the down receiver, outbox {_outbox(centre)}",
    )
    [pending] = [r for r in _outbox(centre) if r["channel"] == "hook"]
    assert pending["sent_at"] is None and "connect" in pending["last_error"], pending

    # Meanwhile the deviation is fixed: the resolve queues behind the trigger.
    send_ports(node, deviating=False)
    wait_until(lambda: other.kinds() == ["trigger", "resolve"], 10, lambda: f"other's resolve, have {other.kinds()}")

    back = time.monotonic()
    late.start()
    wait_until(lambda: late.kinds() == ["trigger", "resolve"], 15, lambda: f"both delivered late, have {late.kinds()}")
    print(f"delivered {late.events()[0].at - back:.1f} s after the receiver came back")
    time.sleep(2)  # a few more dispatch rounds: nothing is sent twice
    assert late.kinds() == ["trigger", "resolve"] and other.kinds() == ["trigger", "resolve"]
    assert late.bad_signatures == other.bad_signatures == 0
    [incident] = _incidents(centre)
    assert incident["status"] == "resolved"
    timeline = _timeline(centre, incident["id"])
    # The first failure of the trigger is on the timeline, not every retry; the resolve waits behind
    # its trigger (never tried while the receiver is down), so it has no failure to record.
    assert timeline[0] == "detected" and timeline.count("notify_failed") == 1
    assert timeline.count("notified") == 4 and timeline.count("resolved") == 1
    assert all(r["sent_at"] is not None for r in _outbox(centre))


# --- 2. a centre killed with notifications pending --------------------------------------------------------


def test_a_killed_centre_sends_its_pending_notification_once_after_restart(
    tmp_path: Path, started: Callable[..., CentreProcess], hooks: List[Hook]
) -> None:
    key = write_key(tmp_path)
    hook = Hook()
    hooks.append(hook)
    centre = started(channels={"hook": webhook(hook.url, key)}, routes=PLAINTEXT_ONLY)
    node = remote_node(centre)
    send_ports(node, deviating=True)
    wait_until(
        lambda: any(r["attempts"] >= 1 for r in _outbox(centre)),
        10,
        lambda: f"a failed attempt, outbox {_outbox(centre)}",
    )
    centre.kill()  # SIGKILL: the incident is open, its notification not delivered
    [row] = _outbox(centre)
    assert row["sent_at"] is None

    hook.start()
    time.sleep(1)
    assert hook.kinds() == []  # nobody else sends it while the centre is down
    centre.start()
    wait_until(lambda: hook.kinds() == ["trigger"], 15, lambda: f"the trigger after restart, have {hook.kinds()}")
    time.sleep(3)  # the duties run again after the restart: no second incident, no second send
    assert hook.kinds() == ["trigger"]
    assert len(_incidents(centre)) == 1
    assert [(r["event"], r["sent_at"] is not None) for r in _outbox(centre)] == [("trigger", True)]


# --- 3. two centres on one PostgreSQL -------------------------------------------------------------------


def test_two_centres_on_postgresql_send_each_notification_once(
    tmp_path: Path, started: Callable[..., CentreProcess], hooks: List[Hook], pg_database: str
) -> None:
    key = write_key(tmp_path)
    hook = Hook(delay_s=0.15).start()  # slow enough that both dispatchers are busy at once
    hooks.append(hook)
    settings: Dict[str, Any] = {
        "channels": {"hook": webhook(hook.url, key)},
        "routes": PLAINTEXT_ONLY,
        "resolve_after_s": 0,
        "dispatch_interval_s": 0.2,
    }
    first = started("a", database_url=pg_database, **settings)
    second = started("b", database_url=pg_database, **settings)  # after the first migrated the schema
    token = first.token()  # unlimited uses
    nodes = [remote_node(first if i % 2 else second, f"web{i}.example.net", token) for i in range(16)]
    for node in nodes:  # deviations arrive over a few seconds, at both centres
        send_ports(node, deviating=True)
        time.sleep(0.25)
    wait_until(lambda: len(hook.kinds()) >= 16, 30, lambda: f"16 triggers, have {len(hook.kinds())}")
    for node in nodes:
        send_ports(node, deviating=False)
    wait_until(lambda: len(hook.kinds()) >= 32, 30, lambda: f"16 resolves, have {Counter(hook.kinds())}")
    time.sleep(2)
    sent = Counter((d.incident["id"], d.event) for d in hook.events())
    assert len(sent) == 32 and set(sent.values()) == {1}, sent  # each notification once
    assert {d.incident["agent_id"] for d in hook.events()} == {n.agent_id for n in nodes}
    assert len(_incidents(first)) == 16  # one incident per node, though both centres run the duties
    owners = Counter(r["claimed_by"].split(":")[1] for r in _outbox(first))
    print(f"notifications sent per centre process (pid): {dict(owners)}")
    assert first.proc is not None and second.proc is not None
    assert owners.keys() == {str(first.proc.pid), str(second.proc.pid)}  # both processes worked the outbox


# --- 4. flapping ----------------------------------------------------------------------------------------


def test_a_flapping_check_pages_nobody_and_a_sustained_one_pages_once(
    tmp_path: Path, started: Callable[..., CentreProcess], hooks: List[Hook]
) -> None:
    key = write_key(tmp_path)
    hook = Hook().start()
    hooks.append(hook)
    centre = started(
        channels={"hook": webhook(hook.url, key)}, routes=PLAINTEXT_ONLY, open_after_s=4, resolve_after_s=4
    )
    node = remote_node(centre)

    def flap(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        state = True
        while time.monotonic() < deadline:
            send_ports(node, deviating=state)
            state = not state
            time.sleep(1.0)

    flap(6)  # failing 1 s at a time, never the 4 s open_after_s asks for
    sustained = time.monotonic()  # before sending: send_ports also waits until the report is judged
    send_ports(node, deviating=True)
    # not paged before the deviation lasted open_after_s: judged by when the trigger came, not by a
    # look after a fixed sleep (on a busy machine send_ports alone can take most of the 4 s)
    wait_until(lambda: hook.kinds() == ["trigger"], 12, lambda: f"one trigger, have {hook.kinds()}")
    assert hook.events()[0].at - sustained >= 4

    flap(6)  # while open, short fixes do not resolve it (resolve_after_s 4) nor re-open it
    assert hook.kinds() == ["trigger"] and len(_incidents(centre)) == 1
    send_ports(node, deviating=False)
    wait_until(lambda: hook.kinds() == ["trigger", "resolve"], 12, lambda: f"one resolve, have {hook.kinds()}")
    time.sleep(1.5)
    assert hook.kinds() == ["trigger", "resolve"] and len(_incidents(centre)) == 1


# --- 5. a waiver that expires ---------------------------------------------------------------------------


def test_an_expired_waiver_lets_the_incident_open(
    tmp_path: Path, started: Callable[..., CentreProcess], hooks: List[Hook]
) -> None:
    key = write_key(tmp_path)
    hook = Hook().start()
    hooks.append(hook)
    centre = started(channels={"hook": webhook(hook.url, key)}, routes=PLAINTEXT_ONLY)
    apikey = centre.api_key()
    node = remote_node(centre)
    expires = datetime.now(timezone.utc) + timedelta(seconds=6)
    waiver = api(
        centre,
        apikey,
        "POST",
        "/api/v1/waivers",
        {
            "agent_id": node.agent_id,
            "rule_id": PLAINTEXT_RULE,
            "justification": "legacy telnet for the PLC until its replacement arrives",
            "approver": "ciso@hosting.example",
            "expires_at": expires.isoformat(),
        },
    )["id"]
    send_ports(node, deviating=True)
    # accepted while the waiver runs: the incident opens only once it expired (its opened_at, below),
    # not judged by a look after a fixed sleep that a busy machine can stretch past the expiry
    wait_until(lambda: hook.kinds() == ["trigger"], 12, lambda: f"the trigger after expiry, have {hook.kinds()}")
    assert datetime.now(timezone.utc) >= expires
    [incident] = _incidents(centre)
    assert _when(incident["opened_at"]) >= expires
    [listed] = api(centre, apikey, "GET", "/api/v1/waivers")
    assert listed["id"] == waiver and listed["approver"] == "ciso@hosting.example"
    [audit] = query(centre, "SELECT * FROM audit_log WHERE action = 'waiver.create'")
    assert (audit["object"], audit["actor"], audit["source"]) == (waiver, "apikey:tests", "127.0.0.1")


# --- 6. maintenance windows, acknowledgement, reminders, audit trail ------------------------------------


def test_windows_hold_alerts_until_they_end_and_an_ack_stops_reminders(
    tmp_path: Path, started: Callable[..., CentreProcess], hooks: List[Hook]
) -> None:
    key = write_key(tmp_path)
    hook = Hook().start()
    hooks.append(hook)
    routes = [{"match": {"rules": [PLAINTEXT_RULE]}, "channels": ["hook"], "repeat_interval_s": 60}]
    centre = started(channels={"hook": webhook(hook.url, key)}, routes=routes)
    apikey = centre.api_key()
    ends, cancelled, allowed = (remote_node(centre, f"{n}.example.net") for n in ("ends", "cancelled", "allowed"))
    now = datetime.now(timezone.utc)

    def window(node: Any, seconds: int, allows: List[str]) -> str:
        body = {
            "agent_id": node.agent_id,
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(seconds=seconds)).isoformat(),
            "reason": "UPS battery swap by the vendor",
            "allows": allows,
        }
        return str(api(centre, apikey, "POST", "/api/v1/windows", body)["id"])

    short = window(ends, 8, [])
    long = window(cancelled, 3600, [])
    window(allowed, 3600, [PLAINTEXT_RULE])  # the service visit needs the plaintext port: allowed, no incident
    for node in (ends, cancelled, allowed):
        send_ports(node, deviating=True)
    wait_until(lambda: len(_incidents(centre)) == 2, 5, lambda: f"two held incidents, have {_incidents(centre)}")
    time.sleep(1.5)
    assert hook.kinds() == []
    by_node = {i["agent_id"]: i for i in _incidents(centre)}
    assert set(by_node) == {ends.agent_id, cancelled.agent_id}  # not the node whose window allows the rule
    assert all(_timeline(centre, i["id"]) == ["detected", "held"] for i in by_node.values())

    api(centre, apikey, "POST", f"/api/v1/windows/{long}/cancel")
    wait_until(lambda: hook.kinds(agent_id=cancelled.agent_id) == ["trigger"], 5, "the trigger after the cancel")
    assert hook.kinds(agent_id=ends.agent_id) == []  # its window still runs
    wait_until(lambda: hook.kinds(agent_id=ends.agent_id) == ["trigger"], 12, "the trigger after the window ended")
    assert datetime.now(timezone.utc) >= now + timedelta(seconds=8)

    ended = by_node[ends.agent_id]["id"]
    api(centre, apikey, "POST", f"/api/v1/incidents/{ended}/ack", {"note": "vendor on site, on it"})
    again = requests.post(f"{centre.url}/api/v1/incidents/{ended}/ack", headers=apikey, json={}, timeout=10)
    assert again.status_code == 400 and "already acknowledged by apikey:tests" in again.text
    shown = api(centre, apikey, "GET", f"/api/v1/incidents/{ended}")
    assert shown["acknowledged_by"] == "apikey:tests"
    assert [e["kind"] for e in shown["timeline"]] == ["detected", "held", "notified", "acknowledged"]

    # The unacknowledged incident is reminded after the route's 60 s; the acknowledged one is not.
    first = hook.events(agent_id=cancelled.agent_id)[0].at
    wait_until(
        lambda: hook.kinds(agent_id=cancelled.agent_id) == ["trigger", "repeat"],
        75 - (time.monotonic() - first),
        lambda: f"a reminder, have {hook.kinds(agent_id=cancelled.agent_id)}",
        step=0.5,
    )
    assert hook.events(agent_id=cancelled.agent_id)[1].at - first >= 59
    time.sleep(max(0.0, hook.events(agent_id=ends.agent_id)[0].at + 63 - time.monotonic()))
    assert hook.kinds(agent_id=ends.agent_id) == ["trigger"]
    assert hook.kinds(agent_id=allowed.agent_id) == []

    audit = query(
        centre, "SELECT actor, action, object, source FROM audit_log WHERE action <> 'apikey.create' ORDER BY id"
    )  # the test's own key, made by the CLI, is recorded too
    assert [a["action"] for a in audit] == ["window.create"] * 3 + ["window.cancel", "incident.ack"]
    assert {(a["actor"], a["source"]) for a in audit} == {("apikey:tests", "127.0.0.1")}
    assert audit[0]["object"] == short and audit[3]["object"] == long and audit[4]["object"] == str(ended)


# --- 7. a real daemon, a real UPS, email and Alertmanager -----------------------------------------------


def _active(url: str) -> List[Dict[str, Any]]:
    return [a for a in requests.get(f"{url}/api/v2/alerts", timeout=5).json() if a["status"]["state"] == "active"]


def test_ups_on_battery_reaches_webhook_email_and_alertmanager_and_silence_follows(
    nut: Nut,  # noqa: F811
    tmp_path: Path,
    started: Callable[..., CentreProcess],
    hooks: List[Hook],
) -> None:
    key = write_key(tmp_path)
    hook = Hook().start()
    hooks.append(hook)
    pki = make_pki(tmp_path / "pki")
    password = tmp_path / "smtp.password"
    password.write_text(PASSWORD + "\n")
    (tmp_path / "am").mkdir()
    with smtp_server(pki) as mailbox, alertmanager(tmp_path / "am") as am_url:
        mail = {
            "type": "email",
            "smtp_port": mailbox.port,
            "username": USER,
            "password_file": str(password),
            "ca_file": str(pki.ca_file),
            "sender": "Tillsyn <tillsyn@centre.example>",
            "to": ["oncall@hosting.example"],
            "timeout_s": 5,
        }
        centre = started(
            channels={"hook": webhook(hook.url, key), "mail": mail, "am": {"type": "alertmanager", "url": am_url}},
            routes=[
                {"match": {"rules": ["power-ups-on-line"]}, "channels": ["hook", "mail", "am"]},
                {"match": {"rules": ["silent"]}, "channels": ["hook"]},
            ],
            resolve_after_s=0,
            silent_after_s=12,
        )
        (tmp_path / "etc-nut").mkdir()
        set_ups(nut, ON_LINE, ["OL", "CHRG"])
        agent = AgentProcess(tmp_path / "node", agent_yaml(nut_port=nut.port, nut_dir=tmp_path / "etc-nut"))
        agent.enrol(centre)
        try:
            agent.start()
            findings = (
                f"SELECT status FROM findings WHERE agent_id = '{agent.agent_id}' AND rule_id = 'power-ups-on-line'"
            )
            wait_until(lambda: query(centre, findings) == [{"status": "passing"}], 30, agent.tail, step=0.5)

            changed = set_ups(nut, ON_BATTERY, ["OB", "DISCHRG"])
            wait_until(lambda: hook.kinds("power-ups-on-line") == ["trigger"], 30, agent.tail, step=0.2)
            print(f"UPS on battery -> webhook in {hook.events()[0].at - changed:.1f} s (power interval 10 s)")
            wait_until(lambda: len(mailbox.messages) == 1, 10, "the trigger by email")
            wait_until(lambda: _active(am_url), 10, "the alert in Alertmanager")
            [trigger] = hook.events("power-ups-on-line")
            assert trigger.incident["agent_id"] == agent.agent_id and trigger.incident["severity"] == "high"
            assert trigger.incident["observed"][0]["status_raw"] == "OB DISCHRG"
            first: email.message.EmailMessage = mailbox.messages[0]
            # a subject folded at its start reads " [Tillsyn] …" after unfolding (RFC 5322 2.2.3); mail
            # readers drop that space, and the random port in the sentence decides whether it folds
            assert first["Subject"].strip().startswith("[Tillsyn] FAILING high M01") and mailbox.tls == [True]
            [fired] = _active(am_url)
            assert fired["labels"]["alertname"] == "power-ups-on-line"
            assert fired["labels"]["agent_id"] == agent.agent_id and fired["labels"]["source"] == "tillsyn"

            set_ups(nut, ON_LINE, ["OL", "CHRG"])
            wait_until(lambda: hook.kinds("power-ups-on-line") == ["trigger", "resolve"], 30, agent.tail, step=0.2)
            wait_until(lambda: len(mailbox.messages) == 2, 10, "the resolve by email")
            wait_until(lambda: not _active(am_url), 10, "the alert to leave Alertmanager's active list")
            resolved = mailbox.messages[1]
            assert resolved["Subject"].strip().startswith("[Tillsyn] RESOLVED")
            assert resolved["In-Reply-To"] == first["Message-ID"]  # one thread per incident

            # The daemon dies: after silent_after_s without heartbeats a silent incident pages.
            agent.kill()
            killed = time.monotonic()
            wait_until(lambda: hook.kinds("silent") == ["trigger"], 12 + 5 + 10, "the silent page", step=0.2)
            print(f"agent killed -> silent page in {hook.events('silent')[0].at - killed:.1f} s (threshold 12 s)")
        finally:
            agent.kill()
        assert len(mailbox.messages) == 2  # the silent incident is routed to the webhook only
        kinds = {e.event for e in hook.events("power-ups-on-line")}
        assert kinds == {"trigger", "resolve"}


# --- bugs found, shown in-process with an explicit clock (real intervals are >= 60 s) --------------------


def _engine_with_telnet(tmp_path: Path, settings: Any) -> Any:
    from fastapi.testclient import TestClient

    from central.alerting.incidents import run_round
    from central.api.app import create_app
    from central.db.engine import read_tx, write_tx
    from central.db.schema import outbox
    from central.runtime.service import open_centre
    from tests.central.conftest import Node, make_config, new_token

    centre = open_centre(make_config(tmp_path, f"sqlite:///{tmp_path / 'c.db'}"))
    with TestClient(create_app(centre, duties=False)) as client:
        node = Node(client)
        node.enrol(new_token(centre))
        send_ports(node, deviating=True)

    def rounds(seconds: int, step: int = 5, ack_at: int | None = None) -> List[Tuple[str, str]]:
        from central.alerting.incidents import acknowledge

        start = datetime.now(timezone.utc)
        for s in range(1, seconds, step):
            with write_tx(centre.engine) as conn:
                if ack_at is not None and s >= ack_at:
                    for (incident_id,) in conn.execute(outbox.select().with_only_columns(outbox.c.incident_id)):
                        acknowledge(conn, incident_id, "oncall", start + timedelta(seconds=s))
                run_round(conn, settings, start + timedelta(seconds=s))
        with read_tx(centre.engine) as conn:
            rows = [(r.channel, r.event) for r in conn.execute(outbox.select().order_by(outbox.c.id))]
        centre.stop()
        return rows

    return rounds


def test_alertmanager_resends_do_not_starve_other_channels_reminders(tmp_path: Path) -> None:
    from central.alerting.settings import Alerting

    settings = Alerting.model_validate(
        {
            "channels": {
                "hook": {"type": "webhook", "url": "http://127.0.0.1:9/h"},
                "am": {"type": "alertmanager", "url": "http://127.0.0.1:9", "resend_s": 10},
            },
            "routes": [{"match": {"rules": [PLAINTEXT_RULE]}, "channels": ["hook", "am"], "repeat_interval_s": 60}],
        }
    )
    sent = _engine_with_telnet(tmp_path, settings)(200)
    assert ("hook", "repeat") in sent, Counter(sent)  # 200 s open with a 60 s repeat interval


def test_an_acknowledged_open_incident_stays_firing_in_alertmanager(tmp_path: Path) -> None:
    from central.alerting.settings import Alerting

    settings = Alerting.model_validate(
        {
            "channels": {"am": {"type": "alertmanager", "url": "http://127.0.0.1:9", "resend_s": 10}},
            "routes": [{"match": {"rules": [PLAINTEXT_RULE]}, "channels": ["am"]}],
        }
    )
    sent = _engine_with_telnet(tmp_path, settings)(120, ack_at=6)
    assert sent.count(("am", "repeat")) >= 8, sent  # still re-sent every 10 s after the ack


def test_a_resolve_never_overtakes_its_trigger_after_an_outage(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import update

    from central.alerting.channels import build_sender
    from central.alerting.dispatch import dispatch_once
    from central.alerting.incidents import run_round
    from central.alerting.settings import Alerting
    from central.api.app import create_app
    from central.db.engine import write_tx
    from central.db.schema import outbox
    from central.runtime.service import open_centre
    from tests.central.conftest import Node, make_config, new_token

    hook = Hook()  # down for now
    settings = Alerting.model_validate(
        {"resolve_after_s": 0, "channels": {"hook": webhook(hook.url, write_key(tmp_path))}, "routes": PLAINTEXT_ONLY}
    )
    senders = {"hook": build_sender("hook", settings.channels["hook"])}
    centre = open_centre(make_config(tmp_path, f"sqlite:///{tmp_path / 'c.db'}"))

    def due(event: str) -> None:
        """As if that row's backoff had passed."""
        past = datetime.now(timezone.utc) - timedelta(seconds=1)
        with write_tx(centre.engine) as conn:
            conn.execute(update(outbox).where(outbox.c.event == event).values(next_attempt_at=past))

    def duties() -> None:
        with write_tx(centre.engine) as conn:
            run_round(conn, settings, datetime.now(timezone.utc) + timedelta(seconds=1))

    try:
        with TestClient(create_app(centre, duties=False)) as client:
            node = Node(client)
            node.enrol(new_token(centre))
            send_ports(node, deviating=True)
            duties()
            for _ in range(3):  # the receiver stays down a while: the trigger's backoff grows to 40 s
                due("trigger")
                assert dispatch_once(centre.engine, settings, senders).failed == 1
            send_ports(node, deviating=False)
            duties()
            due("resolve")
            waiting = dispatch_once(centre.engine, settings, senders)  # the resolve waits behind its trigger
            assert (waiting.sent, waiting.failed) == (0, 0)
            hook.start()
            due("resolve")  # 5 s later; the trigger still waits for its 40 s
            dispatch_once(centre.engine, settings, senders)
            due("trigger")
            dispatch_once(centre.engine, settings, senders)  # the trigger first ...
            dispatch_once(centre.engine, settings, senders)  # ... then, next round, its resolve
    finally:
        hook.stop()
        centre.stop()
    assert hook.kinds() == ["trigger", "resolve"]
