"""Generic JSON webhook, signed: ``X-Tillsyn-Signature: sha256=<hex HMAC-SHA256 of the body>``."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from central.alerting.channels.base import check_event, read_secret, rfc3339, to_json
from central.alerting.channels.http import post_json
from central.alerting.settings import WebhookChannel

VERSION = 1
FIELDS = (
    "id", "dedup_key", "agent_id", "hostname", "tenant", "group", "labels", "rule_id", "kind", "status",
    "severity", "title", "controls", "observed", "message", "opened_at", "resolved_at", "acknowledged_at",
    "acknowledged_by", "url",
)  # fmt: skip
TIMES = ("opened_at", "resolved_at", "acknowledged_at")


def payload(event: str, incident: Mapping[str, Any], sent_at: datetime) -> Dict[str, Any]:
    """The body: a versioned envelope around the incident; ``sent_at`` lets receivers refuse replays."""
    fields = {key: incident.get(key) for key in FIELDS}
    for key in TIMES:
        fields[key] = rfc3339(fields[key])
    return {"version": VERSION, "event": event, "sent_at": rfc3339(sent_at), "incident": fields}


def body(event: str, incident: Mapping[str, Any], sent_at: datetime) -> bytes:
    return to_json(payload(event, incident, sent_at)).encode("utf-8")


def signature(key: bytes, data: bytes) -> str:
    """The ``X-Tillsyn-Signature`` value for ``data``."""
    return "sha256=" + hmac.new(key, data, hashlib.sha256).hexdigest()


@dataclass
class WebhookSender:
    name: str
    url: str
    key: bytes = field(repr=False)
    timeout_s: float
    ca_file: Optional[Path]

    def send(self, event: str, incident: Mapping[str, Any]) -> None:
        check_event(self.name, event)
        data = body(event, incident, datetime.now(timezone.utc))
        headers = {"X-Tillsyn-Signature": signature(self.key, data), "X-Tillsyn-Event": event}
        post_json(
            f"webhook {self.name!r}", self.url, data, timeout_s=self.timeout_s, ca_file=self.ca_file, headers=headers
        )


def build(name: str, channel: WebhookChannel) -> WebhookSender:
    key = read_secret(name, "secret_file", channel.secret_file).encode("utf-8")
    return WebhookSender(name, channel.url, key, channel.timeout_s, channel.ca_file)
