"""PagerDuty Events API v2 (developer.pagerduty.com/docs/events-api-v2/trigger-events).

A trigger and a repeat both send ``trigger``: PagerDuty folds events with the
same ``dedup_key`` into the open alert, so a reminder never opens a second one,
and ``resolve`` with that key closes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from central.alerting.channels import incident_words
from central.alerting.channels.base import check_event, read_secret, rfc3339, to_json
from central.alerting.channels.http import post_json
from central.alerting.settings import PagerDutyChannel

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITY = {"info": "info", "low": "warning", "medium": "warning", "high": "error", "critical": "critical"}
SUMMARY_MAX = 1024  # the API's limit on payload.summary


def body(event: str, incident: Mapping[str, Any], routing_key: str) -> Dict[str, Any]:
    event_action = "resolve" if event == "resolve" else "trigger"
    out: Dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": event_action,
        "dedup_key": str(incident["dedup_key"]),
    }
    if event_action == "resolve":
        return out  # PagerDuty ignores a payload on resolve
    summary = incident_words.summary(incident)
    out["payload"] = {
        "summary": summary[:SUMMARY_MAX],
        "source": incident_words.node(incident),
        "severity": SEVERITY.get(str(incident.get("severity")), "error"),
        "timestamp": rfc3339(incident.get("opened_at")),
        "component": str(incident.get("rule_id")),
        "group": incident.get("group") or incident.get("tenant") or None,
        "class": str(incident.get("kind")),
        "custom_details": {
            "agent_id": incident.get("agent_id"),
            "tenant": incident.get("tenant"),
            "group": incident.get("group"),
            "labels": incident.get("labels") or {},
            "controls": list(incident.get("controls") or []),
            "observed": incident.get("observed"),
            "message": incident.get("message"),
            "opened_at": rfc3339(incident.get("opened_at")),
            "incident_id": incident.get("id"),
            "what_to_do": incident_words.advice(event, incident),
        },
    }
    out["payload"] = {k: v for k, v in out["payload"].items() if v is not None}
    out["client"] = "Tillsyn"
    if incident.get("url"):
        out["client_url"] = incident["url"]
        out["links"] = [{"href": incident["url"], "text": f"{incident_words.node(incident)} on the Tillsyn centre"}]
    return out


@dataclass
class PagerDutySender:
    name: str
    url: str
    routing_key: str = field(repr=False)
    timeout_s: float
    ca_file: Optional[Path]

    def send(self, event: str, incident: Mapping[str, Any]) -> None:
        check_event(self.name, event)
        data = to_json(body(event, incident, self.routing_key)).encode("utf-8")
        post_json(
            f"pagerduty {self.name!r}",
            self.url,
            data,
            timeout_s=self.timeout_s,
            ca_file=self.ca_file,
            secrets=(self.routing_key,),
        )


def build(name: str, channel: PagerDutyChannel) -> PagerDutySender:
    key = read_secret(name, "routing_key_file", channel.routing_key_file)
    return PagerDutySender(name, channel.url or DEFAULT_URL, key, channel.timeout_s, channel.ca_file)
