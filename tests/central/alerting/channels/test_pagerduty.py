"""PagerDuty Events API v2 bodies, posted to a real HTTP server standing in for events.pagerduty.com."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from central.alerting.channels import ChannelError, build_sender
from central.alerting.channels.pagerduty import DEFAULT_URL, body
from central.alerting.settings import PagerDutyChannel
from tests.central.alerting.channels.helpers import Reply, http_receiver, resolved, sample_incident

ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"


def _channel(tmp_path: Path, url: str) -> PagerDutyChannel:
    key = tmp_path / "pd.key"
    key.write_text(ROUTING_KEY + "\n")
    return PagerDutyChannel(url=url, routing_key_file=key)


def test_trigger_repeat_resolve_share_one_dedup_key(tmp_path: Path) -> None:
    incident = sample_incident()
    accepted = Reply(202, b'{"status":"success","message":"Event processed","dedup_key":"x"}')
    with http_receiver(path="/v2/enqueue") as rx:
        rx.replies.extend([accepted, accepted, accepted])
        sender = build_sender("pd", _channel(tmp_path, rx.url))
        sender.send("trigger", incident)
        sender.send("repeat", incident)
        sender.send("resolve", resolved(incident))
    trigger, repeat, resolve = (json.loads(r.body) for r in rx.requests)
    assert {r.path for r in rx.requests} == {"/v2/enqueue"}
    assert [e["event_action"] for e in (trigger, repeat, resolve)] == ["trigger", "trigger", "resolve"]
    assert {e["dedup_key"] for e in (trigger, repeat, resolve)} == {"tillsyn/a1b2c3/ups-on-line"}
    assert {e["routing_key"] for e in (trigger, repeat, resolve)} == {ROUTING_KEY}
    payload = trigger["payload"]
    assert (
        payload["summary"] == "high M01 web1: UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
    )
    assert payload["source"] == "web1"
    assert payload["severity"] == "error"
    assert payload["timestamp"] == "2024-05-01T12:00:05.000Z"
    assert payload["custom_details"]["observed"] == incident["observed"]
    assert payload["custom_details"]["controls"] == ["M01"]
    assert trigger["links"][0]["href"] == "https://centre.example/nodes/a1b2c3"
    assert repeat == trigger
    assert "payload" not in resolve


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("info", "info"), ("low", "warning"), ("medium", "warning"), ("high", "error"), ("critical", "critical")],
)
def test_severity_mapping(ours: str, theirs: str) -> None:
    assert body("trigger", sample_incident(severity=ours), "k")["payload"]["severity"] == theirs


def test_default_url_and_summary_limit(tmp_path: Path) -> None:
    key = tmp_path / "pd.key"
    key.write_text(ROUTING_KEY)
    sender = build_sender("pd", PagerDutyChannel(routing_key_file=key))
    assert sender.url == DEFAULT_URL
    assert ROUTING_KEY not in repr(sender)
    assert len(body("trigger", sample_incident(message="y" * 2000), "k")["payload"]["summary"]) == 1024


def test_invalid_event_is_not_retried_and_rate_limit_is(tmp_path: Path) -> None:
    with http_receiver(path="/v2/enqueue") as rx:
        rx.replies.append(
            Reply(
                400,
                b'{"status":"invalid event","message":"Event object is invalid",'
                b'"errors":["Length of \'summary\' is invalid"]}',
            )
        )
        rx.replies.append(Reply(429, b"Too many requests"))
        sender = build_sender("pd", _channel(tmp_path, rx.url))
        with pytest.raises(ChannelError) as invalid:
            sender.send("trigger", sample_incident())
        with pytest.raises(ChannelError) as limited:
            sender.send("trigger", sample_incident())
    assert invalid.value.retry is False and "Event object is invalid" in str(invalid.value)
    assert limited.value.retry is True
    assert ROUTING_KEY not in str(invalid.value) + str(limited.value)
