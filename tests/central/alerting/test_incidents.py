"""The incident engine on both databases: open, hold, damp, remind, resolve — each exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from central.alerting.incidents import acknowledge, run_round
from central.alerting.manage import Scope, create_waiver, create_window
from central.alerting.settings import Alerting
from central.db.engine import read_tx, write_tx
from central.db.schema import agents, findings, incident_events, incidents, outbox
from central.runtime.service import Centre
from tests.central.conftest import Node, evidence_record, new_token

TELNET = {
    "protocol": "tcp",
    "address": "0.0.0.0",
    "port": 23,
    "exposure": "all",
    "tags": ["plaintext_remote"],
    "services": ["telnet"],
    "process": {"name": "inetd"},
}
RULE = "ports-no-plaintext-remote"
SETTINGS = Alerting.model_validate(
    {
        "open_after_s": 0,
        "resolve_after_s": 60,
        "repeat_interval_s": 3600,
        "channels": {
            "hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
            "mail": {"type": "email", "to": ["oncall@example.net"]},
        },
        "routes": [
            {"match": {"severity": ["critical"]}, "channels": ["mail", "hook"]},
            {"match": {"controls": ["M07"]}, "channels": ["hook"], "repeat_interval_s": 600},
        ],
    }
)


def _send_ports(node: Node, sockets: List[Dict[str, Any]]) -> None:
    assert node.send(node.report(evidence_record("ports", {"sockets": sockets}))).status_code == 200


def _round(centre: Centre, now: datetime, settings: Alerting = SETTINGS) -> Any:
    with write_tx(centre.engine) as conn:
        return run_round(conn, settings, now)


def _incidents(centre: Centre) -> List[Dict[str, Any]]:
    with read_tx(centre.engine) as conn:
        return [dict(r) for r in conn.execute(select(incidents).order_by(incidents.c.id)).mappings()]


def _outbox(centre: Centre) -> List[tuple]:
    with read_tx(centre.engine) as conn:
        return [(r.incident_id, r.channel, r.event) for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def _events(centre: Centre, incident_id: int) -> List[str]:
    with read_tx(centre.engine) as conn:
        return [
            r.kind
            for r in conn.execute(
                select(incident_events)
                .where(incident_events.c.incident_id == incident_id)
                .order_by(incident_events.c.id)
            )
        ]


def _mine(centre: Centre) -> List[Dict[str, Any]]:
    return [i for i in _incidents(centre) if i["rule_id"] == RULE]


def test_open_once_route_remind_and_resolve(client: TestClient, centre: Centre, node: Node) -> None:
    now = datetime.now(timezone.utc)
    _send_ports(node, [TELNET])
    first = _round(centre, now + timedelta(seconds=1))
    assert first.opened >= 1
    [incident] = _mine(centre)
    assert (incident["status"], incident["severity"], incident["kind"]) == ("open", "high", "finding")
    assert incident["dedup_key"] == f"tillsyn/{node.agent_id}/{RULE}"
    assert incident["observed"][0]["port"] == 23
    # routed by control M07 to the webhook only (the critical route does not match a high finding)
    assert [(c, e) for i, c, e in _outbox(centre) if i == incident["id"]] == [("hook", "trigger")]
    assert _events(centre, incident["id"]) == ["detected"]

    _round(centre, now + timedelta(seconds=2))
    assert len(_mine(centre)) == 1  # one incident per (node, rule) while open

    # reminders follow the route's repeat interval (600 s), not the default (3600 s)
    _round(centre, now + timedelta(seconds=700))
    assert [(c, e) for i, c, e in _outbox(centre) if i == incident["id"]] == [("hook", "trigger"), ("hook", "repeat")]
    # an acknowledged incident is not repeated
    with write_tx(centre.engine) as conn:
        assert acknowledge(conn, incident["id"], "alice", now + timedelta(seconds=701))
        assert not acknowledge(conn, incident["id"], "bob", now + timedelta(seconds=702))
    _round(centre, now + timedelta(seconds=1400))
    assert len([1 for i, _, e in _outbox(centre) if i == incident["id"] and e == "repeat"]) == 1

    # fixed: resolves only after resolve_after_s of passing, then a resolve notice to who heard the trigger
    _send_ports(node, [])
    # the finding's "since" is the real clock; resolution waits 60 s after it
    fix_time = datetime.now(timezone.utc)
    _round(centre, fix_time + timedelta(seconds=30))
    assert _mine(centre)[0]["status"] == "open"
    _round(centre, fix_time + timedelta(seconds=61))
    resolved = _mine(centre)[0]
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
    assert [(c, e) for i, c, e in _outbox(centre) if i == incident["id"]][-1] == ("hook", "resolve")
    assert _events(centre, incident["id"]) == ["detected", "acknowledged", "resolved"]
    _round(centre, fix_time + timedelta(seconds=120))
    assert len([1 for i, _, e in _outbox(centre) if i == incident["id"] and e == "resolve"]) == 1


def test_flapping_is_damped(client: TestClient, centre: Centre, node: Node) -> None:
    damped = SETTINGS.model_copy(update={"open_after_s": 120})
    now = datetime.now(timezone.utc)
    _send_ports(node, [TELNET])
    _round(centre, now + timedelta(seconds=60), damped)
    assert _mine(centre) == []  # not for long enough yet
    _send_ports(node, [])  # it cleared before the damping time: nothing to tell anyone
    _send_ports(node, [TELNET])
    _round(centre, now + timedelta(seconds=100), damped)
    assert _mine(centre) == []
    _round(centre, datetime.now(timezone.utc) + timedelta(seconds=121), damped)
    assert len(_mine(centre)) == 1


def test_silent_node_one_incident_and_no_stale_ones(client: TestClient, centre: Centre, node: Node) -> None:
    now = datetime.now(timezone.utc)
    with write_tx(centre.engine) as conn:
        conn.execute(update(agents).where(agents.c.id == node.agent_id).values(silent=True, silent_since=now))
    _round(centre, now)
    mine = [i for i in _incidents(centre) if i["agent_id"] == node.agent_id]
    # a fresh node's findings are all stale, but the silent incident stands for them
    assert [(i["rule_id"], i["kind"]) for i in mine] == [("silent", "silent")]
    assert node.heartbeat().status_code == 200
    _round(centre, now + timedelta(seconds=5))
    assert [i["status"] for i in _incidents(centre) if i["rule_id"] == "silent"] == ["resolved"]


def test_window_holds_then_notifies_and_allows(client: TestClient, centre: Centre, node: Node) -> None:
    now = datetime.now(timezone.utc)
    with write_tx(centre.engine) as conn:
        window = create_window(
            conn,
            now,
            "alice",
            Scope(agent_id=node.agent_id),
            now - timedelta(minutes=1),
            now + timedelta(minutes=30),
            "UPS battery swap",
            [],
        )
    _send_ports(node, [TELNET])
    _round(centre, now + timedelta(seconds=1))
    [incident] = _mine(centre)
    assert [e for i, _, e in _outbox(centre) if i == incident["id"]] == []  # held back
    assert _events(centre, incident["id"]) == ["detected", "held"]
    _round(centre, now + timedelta(minutes=31))  # the window is over: now on-call hears of it
    assert [(c, e) for i, c, e in _outbox(centre) if i == incident["id"]] == [("hook", "trigger")]

    # a window that allows the rule (e.g. remote service during a visit): no incident at all
    other = Node(client, hostname="db2")
    from tests.central.conftest import new_token

    other.enrol(new_token(centre))
    with write_tx(centre.engine) as conn:
        create_window(
            conn,
            now,
            "alice",
            Scope(agent_id=other.agent_id),
            now - timedelta(minutes=1),
            now + timedelta(hours=1),
            "vendor visit",
            [RULE],
        )
    _send_ports(other, [TELNET])
    _round(centre, now + timedelta(seconds=2))
    assert [i for i in _incidents(centre) if i["agent_id"] == other.agent_id and i["rule_id"] == RULE] == []
    assert window


def test_waiver_accepts_until_it_expires(client: TestClient, centre: Centre, node: Node) -> None:
    now = datetime.now(timezone.utc)
    _send_ports(node, [TELNET])
    _round(centre, now + timedelta(seconds=1))
    assert _mine(centre)[0]["status"] == "open"
    with write_tx(centre.engine) as conn:
        create_waiver(
            conn,
            now,
            "bob",
            Scope(agent_id=node.agent_id),
            RULE,
            "legacy PLC needs telnet",
            "ciso",
            now + timedelta(days=7),
        )
    _round(centre, now + timedelta(seconds=2))
    first = _mine(centre)[0]
    assert first["status"] == "resolved"  # accepted deviation: resolved, with the waiver named
    assert _events(centre, first["id"])[-1] == "resolved"
    _round(centre, now + timedelta(days=1))
    assert len(_mine(centre)) == 1  # still waived: no new incident
    _round(centre, now + timedelta(days=8))  # expired by itself: the deviation is an incident again
    assert [i["status"] for i in _mine(centre)] == ["resolved", "open"]


def test_a_window_or_waiver_is_ended_within_its_scope_once(centre: Centre, node: Node) -> None:
    """Ending one reads its scope (for the tenant check) by id; one that is not there is nowhere,
    which no tenant-bound person can reach; ending twice is refused; each end is audited."""
    from central.alerting import manage
    from central.db.schema import audit_log

    now = datetime.now(timezone.utc)
    with write_tx(centre.engine) as conn:
        window = create_window(conn, now, "alice", Scope(tenant="acme"), now, now + timedelta(hours=1), "swap", [])
        waiver = create_waiver(
            conn, now, "alice", Scope(agent_id=node.agent_id), RULE, "legacy", "bob", now + timedelta(days=1)
        )
    with read_tx(centre.engine) as conn:
        assert manage.scope_of(conn, "window", window) == Scope(tenant="acme")
        assert manage.scope_of(conn, "waiver", waiver) == Scope(agent_id=node.agent_id)
        assert manage.scope_of(conn, "window", waiver) == manage.NOWHERE  # ids are not shared between kinds
        assert manage.scope_of(conn, "waiver", "no-such-id") == manage.NOWHERE
    with write_tx(centre.engine) as conn:
        manage.cancel_window(conn, now, "carol", window)
        manage.revoke_waiver(conn, now, "carol", waiver)
    for end, item in ((manage.cancel_window, window), (manage.revoke_waiver, waiver)):
        with write_tx(centre.engine) as conn, pytest.raises(manage.ManageError, match="no active"):
            end(conn, now, "carol", item)
    with read_tx(centre.engine) as conn:
        trail = [(r.action, r.object) for r in conn.execute(select(audit_log.c.action, audit_log.c.object))]
        created = conn.execute(select(audit_log.c.detail).where(audit_log.c.action == "waiver.create")).scalar_one()
    assert ("window.cancel", window) in trail and ("waiver.revoke", waiver) in trail
    assert created["rule_id"] == RULE and created["expires_at"].startswith(str((now + timedelta(days=1)).year))


def _resolved_with(centre: Centre, incident_id: int) -> List[Any]:
    with read_tx(centre.engine) as conn:
        return [
            r.detail
            for r in conn.execute(
                select(incident_events.c.detail).where(
                    incident_events.c.incident_id == incident_id, incident_events.c.kind == "resolved"
                )
            )
        ]


@pytest.mark.parametrize("change", ["finding gone", "node revoked"])
def test_an_incident_resolves_when_its_rule_or_node_is_gone(
    client: TestClient, centre: Centre, node: Node, change: str
) -> None:
    """Only the incident that cleared is resolved, with its reason; another node's, still failing, stays open."""
    other = Node(client, hostname="web2.example.net")
    other.enrol(new_token(centre))
    now = datetime.now(timezone.utc)
    for n in (node, other):
        _send_ports(n, [TELNET])
    _round(centre, now + timedelta(seconds=1))
    opened = {i["agent_id"]: i["id"] for i in _mine(centre)}
    assert set(opened) == {node.agent_id, other.agent_id}
    with write_tx(centre.engine) as conn:
        if change == "finding gone":  # as when a policy change retires the rule for this node
            conn.execute(findings.delete().where(findings.c.agent_id == node.agent_id, findings.c.rule_id == RULE))
        else:
            conn.execute(update(agents).where(agents.c.id == node.agent_id).values(revoked_at=now))
    assert _round(centre, now + timedelta(seconds=2)).resolved == 1
    assert {i["agent_id"]: i["status"] for i in _mine(centre)} == {node.agent_id: "resolved", other.agent_id: "open"}
    reason = "rule no longer in force for this node" if change == "finding gone" else "node revoked"
    assert _resolved_with(centre, opened[node.agent_id]) == [reason]
    # whoever was paged hears that it resolved, a revoked node's incident too
    sent = {(i, e) for i, _, e in _outbox(centre)}
    assert {(opened[node.agent_id], "trigger"), (opened[node.agent_id], "resolve")} <= sent
    assert (opened[other.agent_id], "resolve") not in sent
    assert _round(centre, now + timedelta(seconds=3)).resolved == 0
    assert _resolved_with(centre, opened[node.agent_id]) == [reason]


def test_a_fixed_deviation_resolves_once_passing_for_exactly_resolve_after(
    client: TestClient, centre: Centre, node: Node
) -> None:
    now = datetime.now(timezone.utc)
    _send_ports(node, [TELNET])
    _round(centre, now + timedelta(seconds=1))
    _send_ports(node, [])
    with read_tx(centre.engine) as conn:
        where = (findings.c.agent_id == node.agent_id, findings.c.rule_id == RULE)
        since = conn.execute(select(findings.c.since).where(*where)).scalar_one()
    settle = timedelta(seconds=SETTINGS.resolve_after_s)
    assert _round(centre, since + settle - timedelta(microseconds=1)).resolved == 0
    assert _mine(centre)[0]["status"] == "open"
    assert _round(centre, since + settle).resolved == 1
    assert _resolved_with(centre, _mine(centre)[0]["id"]) == ["passing again"]


RHYTHMS = Alerting.model_validate(
    {
        "open_after_s": 0,
        "repeat_interval_s": 600,
        "channels": {
            "am": {"type": "alertmanager", "url": "http://127.0.0.1:9/api/v2/alerts", "resend_s": 60},
            "hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
        },
        "routes": [{"match": {}, "channels": ["am", "hook"]}],
    }
)


def test_a_round_looks_only_at_incidents_due_and_each_channel_keeps_its_rhythm(
    client: TestClient, centre: Centre, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An open incident is looked at again when its soonest channel can be due (Alertmanager's
    re-send every 60 s, the webhook's reminder every 600 s), not on every round in between; a
    restart of the centre has every open incident looked at again."""
    import central.alerting.incidents as engine

    looked: List[int] = []
    remind = engine._remind

    def counting(scene: Any, incident: Any, agent: Any, sent: Any) -> Any:
        if incident["rule_id"] == RULE:
            looked.append(incident["id"])
        return remind(scene, incident, agent, sent)

    monkeypatch.setattr(engine, "_remind", counting)
    now = datetime.now(timezone.utc)
    _send_ports(node, [TELNET])
    _round(centre, now + timedelta(seconds=1), RHYTHMS)
    [incident] = _mine(centre)
    _round(centre, now + timedelta(seconds=2), RHYTHMS)
    assert _mine(centre)[0]["next_check_at"] == now + timedelta(seconds=61)  # the trigger + 60 s
    looked.clear()
    for second in (10, 30, 60):
        _round(centre, now + timedelta(seconds=second), RHYTHMS)
    assert looked == []  # nothing can be due before 61 s: the incident is not read
    for second in range(70, 671, 60):  # a round a minute for eleven minutes
        _round(centre, now + timedelta(seconds=second), RHYTHMS)
    assert len(looked) == 11
    sent = [(c, e) for i, c, e in _outbox(centre) if i == incident["id"]]
    assert sent.count(("am", "repeat")) == 11  # every 60 s, to keep Alertmanager's alert firing
    assert sent.count(("hook", "repeat")) == 1  # once, at 610 s (the trigger + 600 s)
    assert _mine(centre)[0]["next_check_at"] == now + timedelta(seconds=730)

    with write_tx(centre.engine) as conn:
        engine.look_again_at_open_incidents(conn)  # as a centre starting does
    assert _mine(centre)[0]["next_check_at"] is None
    looked.clear()
    _round(centre, now + timedelta(seconds=680), RHYTHMS)
    assert looked == [incident["id"]]  # read again, and nothing due: nothing sent
    assert [(c, e) for i, c, e in _outbox(centre) if i == incident["id"]] == sent
