"""A notification as the person on call receives it: an email through a real SMTP server and a Slack
message through a real HTTP receiver, each shown the way a reader sees it and photographed by
headless Chromium.  ``TILLSYN_SCREENSHOTS=docs/screenshots`` refreshes the pictures in docs/."""

from __future__ import annotations

import datetime as dt
import email.message
import html
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from central.alerting.channels import build_sender
from central.alerting.settings import SlackChannel
from tests.central.alerting.channels.helpers import (
    email_channel,
    http_receiver,
    make_pki,
    resolved,
    sample_incident,
    smtp_server,
)
from tests.central.web.conftest import CHROMIUM_ARGS, SCREENSHOTS
from tests.conftest import require_tool

UTC = dt.timezone.utc
SENTENCE = "UPS acc@ups1.acme.example:3493 is on battery (OB DISCHRG), 29 min runtime left, battery at 64 %"
BACK = "UPS acc@ups1.acme.example:3493 back on line power"


def _incident(**changes: Any) -> Dict[str, Any]:
    return sample_incident(
        hostname="web1.acme.example",
        rule_id="power-ups-on-line",
        dedup_key="tillsyn/a1b2c3/power-ups-on-line",
        title="Every UPS runs on line power",
        message=SENTENCE,
        observed=[{"name": "acc", "server": "ups1.acme.example:3493", "status_raw": "OB DISCHRG",
                   "battery_charge_pct": 64.0, "runtime_s": 1740}],
        url="https://tillsyn.acme.example/nodes/a1b2c3",
        **changes,
    )  # fmt: skip


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    chromium = require_tool("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 900, "height": 600})
        finally:
            browser.close()


STYLE = """<style>
body { font: 14px/1.45 "DejaVu Sans", Arial, sans-serif; background: #eef0f3; margin: 0; padding: 24px; }
.card { background: #fff; border: 1px solid #d5d9de; border-radius: 6px; max-width: 840px; margin: 0 0 18px; }
.head { padding: 12px 16px; border-bottom: 1px solid #e3e6ea; }
.head div { color: #555; font-size: 13px; } .head h2 { font-size: 17px; margin: 0 0 6px; color: #111; }
pre { margin: 0; padding: 14px 16px; font: 13px/1.45 "DejaVu Sans Mono", monospace; white-space: pre-wrap; }
.slack { padding: 14px 16px; } .slack .who { font-weight: bold; } .slack .who span { color: #777; font-weight: normal;
font-size: 12px; margin-left: 6px; } .slack h3 { font-size: 16px; margin: 6px 0; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 18px; margin: 8px 0; }
.dot { display: inline-block; width: 14px; height: 14px; border-radius: 50%; vertical-align: -1px; }
.button { display: inline-block; border: 1px solid #bbb; border-radius: 4px; padding: 3px 10px; font-weight: bold; }
</style>"""


def _mail_html(messages: List[email.message.EmailMessage]) -> str:
    cards = []
    for msg in messages:
        body = msg.get_content()
        head = "".join(
            f"<div>{name}: {html.escape(str(msg[name]))}</div>" for name in ("From", "To", "Date") if msg[name]
        )
        subject = html.escape(str(msg["Subject"]))
        cards.append(
            f'<div class="card"><div class="head"><h2>{subject}</h2>{head}</div><pre>{html.escape(body)}</pre></div>'
        )
    return f"<!DOCTYPE html><meta charset=utf-8>{STYLE}<body>{''.join(cards)}</body>"


def _mrkdwn(text: str) -> str:
    """Slack's mrkdwn as Slack shows it: *bold*, line breaks; the text is already &-escaped."""
    safe = html.escape(html.unescape(text))
    return re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", safe).replace("\n", "<br>")


def _slack_html(payloads: List[Dict[str, Any]]) -> str:
    # Slack draws :red_circle: and :large_green_circle: as coloured dots (no emoji font here)
    icons = {":red_circle:": '<span class="dot" style="background:#d5322a"></span>',
             ":large_green_circle:": '<span class="dot" style="background:#2c9b4a"></span>'}  # fmt: skip
    cards = []
    for payload in payloads:
        parts = []
        for block in payload["blocks"]:
            if block["type"] == "header":
                icon = next((v for k, v in icons.items() if payload["text"].startswith(k)), "")
                parts.append(f"<h3>{icon} {html.escape(block['text']['text'])}</h3>")
            elif block["type"] == "section" and "fields" in block:
                cells = "".join(f"<div>{_mrkdwn(f['text'])}</div>" for f in block["fields"])
                parts.append(f'<div class="fields">{cells}</div>')
            elif block["type"] == "section":
                parts.append(f"<p>{_mrkdwn(block['text']['text'])}</p>")
            elif block["type"] == "actions":
                parts.append(
                    "".join(f'<span class="button">{html.escape(e["text"]["text"])}</span>' for e in block["elements"])
                )
        who = '<div class="who">Tillsyn <span>APP 03:12</span></div>'
        cards.append(f'<div class="card slack">{who}{"".join(parts)}</div>')
    return f"<!DOCTYPE html><meta charset=utf-8>{STYLE}<body>{''.join(cards)}</body>"


def _photograph(page: Any, document: str, tmp_path: Path, name: str) -> Path:
    source = tmp_path / f"{name}.html"
    source.write_text(document, encoding="utf-8")
    page.goto(source.as_uri())
    target = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
    return target


def test_an_email_as_received(tmp_path: Path, page: Any) -> None:
    pki = make_pki(tmp_path / "pki")
    incident = _incident()
    with smtp_server(pki) as box:
        sender = build_sender("mail", email_channel(tmp_path, box.port, pki))
        sender.send("trigger", incident)
        sender.send("resolve", resolved(dict(incident, message=BACK)))
    trigger, resolve = box.messages
    assert trigger["Subject"] == f"[Tillsyn] FAILING high M01 web1.acme.example: {SENTENCE}"
    assert resolve["Subject"] == f"[Tillsyn] RESOLVED high M01 web1.acme.example: {BACK}"
    body = trigger.get_content()
    assert f"What:         {SENTENCE}" in body
    assert "Rule:         Every UPS runs on line power (power-ups-on-line, controls M01)" in body
    assert "Observed:" not in body and '{"' not in body  # the sentence, not the observed value's JSON
    _photograph(page, _mail_html([trigger, resolve]), tmp_path, "notification-email")
    assert page.locator("h2").first.inner_text() == str(trigger["Subject"])


def test_a_slack_message_as_received(tmp_path: Path, page: Any) -> None:
    incident = _incident()
    with http_receiver(path="/services/T000/B000/XXXX") as rx:
        sender = build_sender("slack-ops", SlackChannel(url=rx.url))
        sender.send("trigger", incident)
        sender.send("resolve", resolved(dict(incident, message=BACK)))
    payloads = [json.loads(r.body) for r in rx.requests]
    assert payloads[0]["text"] == f":red_circle: FAILING high M01 web1.acme.example: {SENTENCE}"
    fields = {f["text"].split("\n", 1)[0]: f["text"].split("\n", 1)[1] for f in payloads[0]["blocks"][1]["fields"]}
    assert fields["*What*"] == SENTENCE
    assert "*Observed*" not in fields and not any('{"' in text for text in fields.values())
    assert payloads[1]["text"] == f":large_green_circle: RESOLVED high M01 web1.acme.example: {BACK}"
    _photograph(page, _slack_html(payloads), tmp_path, "notification-slack")
    assert SENTENCE in page.locator(".fields").first.inner_text()
