"""Which channels hear of an incident, and how often they are reminded (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence

from central.alerting.settings import Alerting, Match


@dataclass(frozen=True)
class Target:
    channel: str
    repeat_interval_s: int


def _any(wanted: Optional[Sequence[str]], values: Sequence[Optional[str]]) -> bool:
    return wanted is None or any(v in wanted for v in values if v is not None)


def matches(match: Match, incident: Mapping[str, Any]) -> bool:
    labels = incident.get("labels") or {}
    return (
        _any(match.severity, [incident.get("severity")])
        and _any(match.controls, list(incident.get("controls") or []))
        and _any(match.rules, [incident.get("rule_id")])
        and _any(match.tenant, [incident.get("tenant")])
        and _any(match.group, [incident.get("group")])
        and all(labels.get(k) == v for k, v in match.labels.items())
    )


def route(settings: Alerting, incident: Mapping[str, Any]) -> List[Target]:
    """The channels for ``incident``, in route order, each once (the first route naming it wins)."""
    targets: List[Target] = []
    seen = set()
    for r in settings.routes:
        if not matches(r.match, incident):
            continue
        for name in r.channels:
            if name not in seen:
                seen.add(name)
                targets.append(Target(name, r.repeat_interval_s or settings.repeat_interval_s))
        if r.stop:
            break
    return targets
