"""Slack incoming webhook: ``text`` (notifications, fallback) plus Block Kit ``blocks``.

Block Kit limits (api.slack.com/reference/block-kit/blocks): header text 150
characters, at most 10 section fields of 2000 characters each.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from central.alerting.channels import incident_words
from central.alerting.channels.http import ChatWebhookSender, chat_webhook
from central.alerting.settings import SlackChannel

ICONS = {"trigger": ":red_circle:", "repeat": ":bell:", "update": ":grey_question:", "resolve": ":large_green_circle:"}


def escape(value: str) -> str:
    """Slack's three control characters in mrkdwn (api.slack.com/reference/surfaces/formatting#escaping)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(event: str, incident: Mapping[str, Any]) -> Dict[str, Any]:
    headline = incident_words.headline(event, incident)
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{escape(value)[:1900]}"}
        for label, value in incident_words.details(incident)
        if label != "Link"
    ][:10]
    blocks: List[Dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150], "emoji": True}},
        {"type": "section", "fields": fields},
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(incident_words.advice(event, incident))}},
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


def build(name: str, channel: SlackChannel) -> ChatWebhookSender:
    return chat_webhook("slack", name, channel, payload)
