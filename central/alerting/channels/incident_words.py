"""Words every human-readable channel (email, Slack, Teams, PagerDuty) uses for an incident."""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Tuple

from central.alerting.channels.base import when
from evidence.sentences import words

OBSERVED_MAX = 500
"""Characters of observed facts a person is shown (when there is no sentence) or a label carries."""


def word(event: str, incident: Mapping[str, Any]) -> str:
    """FAILING / SILENT on a trigger, REMINDER on a repeat, UPDATE on an update, RESOLVED on a resolve."""
    if event == "resolve":
        return "RESOLVED"
    if event == "repeat":
        return "REMINDER"
    if event == "update":
        return "UPDATE"
    return "SILENT" if incident.get("kind") == "silent" else "FAILING"


def controls(incident: Mapping[str, Any]) -> str:
    return ",".join(str(c) for c in incident.get("controls") or [])


def node(incident: Mapping[str, Any]) -> str:
    return str(incident.get("hostname") or incident.get("agent_id") or "unknown node")


def sentence(incident: Mapping[str, Any]) -> str:
    """What this notification says happened, with the observed value (else the rule's title)."""
    return str(incident.get("message") or incident.get("title") or incident.get("rule_id"))


def summary(incident: Mapping[str, Any]) -> str:
    """``high M01 web1: UPS acc@ups1 is on battery (OB DISCHRG), 29 min runtime left``."""
    parts = [str(incident.get("severity") or ""), controls(incident), node(incident)]
    return " ".join(p for p in parts if p) + f": {sentence(incident)}"


def headline(event: str, incident: Mapping[str, Any]) -> str:
    """``FAILING high M01 web1: UPS acc@ups1 is on battery (OB DISCHRG), 29 min runtime left``."""
    return f"{word(event, incident)} {summary(incident)}"


def facts(incident: Mapping[str, Any], limit: int = OBSERVED_MAX) -> Optional[str]:
    """The observed facts in words, only when there is no sentence to carry them.

    The sentence already states the observed value; an incident from before sentences were
    stored (migration 0009) has only the rule's title, so its facts are written out
    (``ups ups1, status OB DISCHRG``), never as JSON: the webhook, PagerDuty and Alertmanager
    carry the structured value for programs.
    """
    if incident.get("message") or incident.get("kind") == "silent" or incident.get("observed") is None:
        return None
    text = words(incident.get("observed"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def details(incident: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """(label, value) lines describing the incident, the empty ones left out."""
    where = ", ".join(f"{key} {incident[key]}" for key in ("tenant", "group") if incident.get(key))
    node_line = node(incident) + f" (agent {incident.get('agent_id')}" + (f", {where})" if where else ")")
    rule = str(incident.get("rule_id"))
    if incident.get("controls"):
        rule += f", controls {controls(incident)}"
    title: Optional[str] = incident.get("title")
    acknowledged = incident.get("acknowledged_at")
    rows: List[Tuple[str, Optional[str]]] = [
        ("What", sentence(incident)),
        ("Node", node_line),
        ("Rule", f"{title} ({rule})" if title and incident.get("kind") != "silent" else rule),
        ("Severity", str(incident.get("severity"))),
        ("Observed", facts(incident)),
        ("Since", when(incident.get("opened_at"))),
        ("Resolved", when(incident.get("resolved_at"))),
        (
            "Acknowledged",
            f"{when(acknowledged)} by {incident.get('acknowledged_by') or 'unknown'}" if acknowledged else None,
        ),
        ("Labels", ", ".join(f"{k}={v}" for k, v in sorted((incident.get("labels") or {}).items())) or None),
        ("Link", incident.get("url")),
    ]
    return [(label, value) for label, value in rows if value]


def advice(event: str, incident: Mapping[str, Any]) -> str:
    """What the person on call should do next."""
    if event == "resolve":
        return "Nothing to do: fresh evidence shows the condition has cleared."
    if event == "update":
        return (
            f"The evidence from {node(incident)} no longer shows the deviation, nor that it is gone: the "
            "incident stays open until the rule passes again. Find out why the agent cannot see (the "
            "reason above), or acknowledge the incident if someone is on it."
        )
    if incident.get("kind") == "silent":
        return (
            f"{node(incident)} has stopped reporting. Check that the host is up, that the tillsyn-agent "
            "service runs (systemctl status tillsyn-agent) and that it can reach the centre."
        )
    return (
        f"Look at {node(incident)}, fix the deviation the rule describes (see the policy for remediation) "
        "and acknowledge the incident on the centre so colleagues know someone is on it. "
        "It resolves by itself once the node's evidence shows the control passing again."
    )
