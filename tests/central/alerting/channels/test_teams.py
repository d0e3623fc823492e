"""Microsoft Teams Adaptive Card payloads, posted to a real HTTP server."""

from __future__ import annotations

import json

from central.alerting.channels import build_sender
from central.alerting.settings import TeamsChannel
from tests.central.alerting.channels.helpers import Reply, http_receiver, resolved, sample_incident


def test_trigger_and_resolve_post_adaptive_cards() -> None:
    incident = sample_incident()
    with http_receiver() as rx:
        rx.replies.append(Reply(202, b""))  # what a Teams Workflow answers
        sender = build_sender("teams-ops", TeamsChannel(url=rx.url))
        sender.send("trigger", incident)
        sender.send("resolve", resolved(incident))
    trigger, resolve = (json.loads(r.body) for r in rx.requests)
    assert trigger["type"] == "message"
    [attachment] = trigger["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, facts, advice = card["body"]
    assert "acknowledge" in advice["text"]
    assert (
        title["text"]
        == "FAILING high M01 web1: UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
    )
    assert title["color"] == "Attention"
    rule = {"title": "Rule", "value": "Every UPS runs on line power (ups-on-line, controls M01)"}
    assert rule in facts["facts"]
    what = {"title": "What", "value": "UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"}
    assert what in facts["facts"]
    assert "Observed" not in [f["title"] for f in facts["facts"]]  # the sentence says it; no JSON for a person
    assert not any("{" in f["value"] for f in facts["facts"])
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open in Tillsyn", "url": "https://centre.example/nodes/a1b2c3"}
    ]
    resolved_card = resolve["attachments"][0]["content"]
    assert resolved_card["body"][0]["text"].startswith("RESOLVED") and resolved_card["body"][0]["color"] == "Good"
    assert {"title": "Resolved", "value": "2024-05-01 12:30:00 UTC"} in resolved_card["body"][1]["facts"]
