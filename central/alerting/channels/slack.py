"""Slack incoming webhook: ``text`` (notifications, fallback) plus Block Kit ``blocks``.

Block Kit limits (api.slack.com/reference/block-kit/blocks): header text 150
characters, at most 10 section fields of 2000 characters each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from central.alerting.channels import text
from central.alerting.channels.base import check_event, to_json
from central.alerting.channels.http import post_json
from central.alerting.settings import Channel

ICONS = {"trigger": ":red_circle:", "repeat": ":bell:", "resolve": ":large_green_circle:"}


def escape(value: str) -> str:
    """Slack's three control characters in mrkdwn (api.slack.com/reference/surfaces/formatting#escaping)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(event: str, incident: Mapping[str, Any]) -> Dict[str, Any]:
    headline = text.headline(event, incident)
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{escape(value)[:1900]}"}
        for label, value in text.details(incident)
        if label != "Link"
    ][:10]
    blocks: List[Dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150], "emoji": True}},
        {"type": "section", "fields": fields},
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(text.advice(event, incident))}},
    ]
    url = incident.get("url")
    if url:
        blocks.append(
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open in Tillsyn"}, "url": url}],
            }
        )
    return {"text": f"{ICONS[event]} {escape(headline)}", "blocks": blocks}


@dataclass
class SlackSender:
    name: str
    url: str
    timeout_s: float
    ca_file: Optional[Path]

    def send(self, event: str, incident: Mapping[str, Any]) -> None:
        check_event(self.name, event)
        data = to_json(payload(event, incident)).encode("utf-8")
        post_json(f"slack {self.name!r}", self.url, data, timeout_s=self.timeout_s, ca_file=self.ca_file)


def build(name: str, channel: Channel) -> SlackSender:
    assert channel.url is not None  # Channel's validator requires it
    return SlackSender(name, channel.url, channel.timeout_s, channel.ca_file)
