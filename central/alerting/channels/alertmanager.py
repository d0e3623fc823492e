"""Prometheus Alertmanager API v2: ``POST {url}/api/v2/alerts`` with one alert.

While an incident is open ``endsAt`` lies a few resend intervals ahead, so the
alert keeps firing only as long as the centre keeps re-sending it (the way
Prometheus itself feeds Alertmanager); a resolve sets ``endsAt`` to the time it
cleared.  The labels identify the alert and must not change between sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from central.alerting.channels import incident_words
from central.alerting.channels.base import check_event, rfc3339, to_json, utc
from central.alerting.channels.http import post_json
from central.alerting.settings import AlertmanagerChannel

DEFAULT_RESEND_S = 60
RESENDS_ALIVE = 4  # an open alert outlives this many missed resends
LABEL_PREFIX = "label_"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str:
    """A node label as a Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``), prefixed."""
    return LABEL_PREFIX + _INVALID.sub("_", str(key))


def labels(incident: Mapping[str, Any]) -> Dict[str, str]:
    out = {label_name(k): str(v) for k, v in (incident.get("labels") or {}).items() if v not in (None, "")}
    ours = {
        "alertname": str(incident.get("rule_id")),
        "node": incident_words.node(incident),
        "agent_id": str(incident.get("agent_id")),
        "severity": str(incident.get("severity")),
        "controls": incident_words.controls(incident),
        "tenant": str(incident.get("tenant") or ""),
        "group": str(incident.get("group") or ""),
        "source": "tillsyn",
    }
    out.update({k: v for k, v in ours.items() if v})  # an empty label is no label in Prometheus
    return out


def observed_json(incident: Mapping[str, Any], limit: int = incident_words.OBSERVED_MAX) -> str:
    """The observed value as JSON for programs reading the annotation, cut at ``limit`` characters."""
    text = to_json(incident.get("observed"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alert(event: str, incident: Mapping[str, Any], now: datetime, resend_s: int) -> Dict[str, Any]:
    if event == "resolve":
        ends = utc(incident["resolved_at"]) if isinstance(incident.get("resolved_at"), datetime) else now
    else:
        ends = now + timedelta(seconds=resend_s * RESENDS_ALIVE)
    annotations = {
        "summary": incident_words.summary(incident),
        "description": str(incident.get("message") or incident.get("title") or ""),
        "observed": observed_json(incident),
        "what_to_do": incident_words.advice("trigger", incident),
        "incident_id": str(incident.get("id")),
    }
    out: Dict[str, Any] = {
        "labels": labels(incident),
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": rfc3339(incident.get("opened_at") or now),
        "endsAt": rfc3339(ends),
    }
    if incident.get("url"):
        out["generatorURL"] = incident["url"]
    return out


def body(event: str, incident: Mapping[str, Any], now: datetime, resend_s: int) -> List[Dict[str, Any]]:
    return [alert(event, incident, now, resend_s)]


@dataclass
class AlertmanagerSender:
    name: str
    url: str
    timeout_s: float
    ca_file: Optional[Path]
    resend_s: int = DEFAULT_RESEND_S  # the dispatcher re-sends open incidents this often

    def send(self, event: str, incident: Mapping[str, Any]) -> None:
        check_event(self.name, event)
        data = to_json(body(event, incident, datetime.now(timezone.utc), self.resend_s)).encode("utf-8")
        post_json(
            f"alertmanager {self.name!r}",
            self.url.rstrip("/") + "/api/v2/alerts",
            data,
            timeout_s=self.timeout_s,
            ca_file=self.ca_file,
        )


def build(name: str, channel: AlertmanagerChannel) -> AlertmanagerSender:
    return AlertmanagerSender(
        name, channel.url, channel.timeout_s, channel.ca_file, channel.resend_s or DEFAULT_RESEND_S
    )
