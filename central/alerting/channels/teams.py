"""Microsoft Teams: an Adaptive Card in a ``message`` envelope.

Both Teams webhook kinds take this shape: the Workflows ("When a Teams webhook
request is received") that replace Office 365 connectors, and the older connectors
(learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from central.alerting.channels import incident_words
from central.alerting.channels.http import ChatWebhookSender, chat_webhook
from central.alerting.settings import TeamsChannel

COLOURS = {"trigger": "Attention", "repeat": "Warning", "update": "Warning", "resolve": "Good"}


def card(event: str, incident: Mapping[str, Any]) -> Dict[str, Any]:
    body: List[Dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": incident_words.headline(event, incident),
            "weight": "Bolder",
            "size": "Medium",
            "color": COLOURS[event],
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": label, "value": value} for label, value in incident_words.details(incident) if label != "Link"
            ],
        },
        {"type": "TextBlock", "text": incident_words.advice(event, incident), "wrap": True},
    ]
    content: Dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if incident.get("url"):
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Tillsyn", "url": incident["url"]}]
    return content


def payload(event: str, incident: Mapping[str, Any]) -> Dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card(event, incident),
            },
        ],
    }


def build(name: str, channel: TeamsChannel) -> ChatWebhookSender:
    return chat_webhook("teams", name, channel, payload)
