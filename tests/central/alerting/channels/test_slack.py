"""Slack incoming-webhook payloads, posted to a real HTTP server."""

from __future__ import annotations

import json

from central.alerting.channels import build_sender
from central.alerting.channels.slack import payload
from central.alerting.settings import SlackChannel
from tests.central.alerting.channels.helpers import http_receiver, resolved, sample_incident


def test_trigger_posts_text_and_blocks() -> None:
    with http_receiver(path="/services/T0/B0/abcdefghijklmnop") as rx:
        build_sender("slack-ops", SlackChannel(url=rx.url)).send("trigger", sample_incident())
    [request] = rx.requests
    body = json.loads(request.body)
    assert (
        body["text"]
        == ":red_circle: FAILING high M01 web1: UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
    )
    header, facts, advice, actions = body["blocks"]
    assert header["type"] == "header" and header["text"]["text"].startswith("FAILING high M01 web1")
    fields = {f["text"].split("\n")[0]: f["text"].split("\n", 1)[1] for f in facts["fields"]}
    assert fields["*Node*"] == "web1 (agent a1b2c3, tenant acme, group web)"
    assert fields["*Rule*"] == "Every UPS runs on line power (ups-on-line, controls M01)"
    assert fields["*What*"] == "UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
    assert "*Observed*" not in fields  # the sentence says it; no JSON for a person
    assert '{"' not in body["text"] and not any('{"' in f["text"] for f in facts["fields"])
    assert fields["*Since*"] == "2024-05-01 12:00:05 UTC"
    assert "acknowledge" in advice["text"]["text"]
    assert actions["elements"][0]["url"] == "https://centre.example/nodes/a1b2c3"


def test_resolve_and_escaping() -> None:
    incident = resolved(sample_incident(message="/ (ext4 on <sda> & friends) is encrypted now", url=None))
    body = payload("resolve", incident)
    assert body["text"].startswith(":large_green_circle: RESOLVED")
    assert "&lt;sda&gt; &amp; friends" in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section"]  # no link, no button
    assert len(body["blocks"][0]["text"]["text"]) <= 150
    assert len(payload("trigger", sample_incident(message="x" * 400))["blocks"][0]["text"]["text"]) == 150
