"""M12 incident notification: for every incident of a node in the period, the time from detected
to first notified and to acknowledged, against the targets of central.yaml's ``measures``.  Pure:
judged from rows the caller read (``judge.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from central.judging.own.rules import NOTIFICATION
from central.judging.own.settings import Measures
from evidence.rules import Result, Verdict


@dataclass(frozen=True)
class Incident:
    id: int
    rule_id: str
    severity: str
    detected_at: datetime
    notified_at: Optional[datetime]
    """When its first notification was delivered (None: not yet, or every channel failed)."""
    acknowledged_at: Optional[datetime]
    held: bool
    """Held by a maintenance window: not notified by design (recorded with the incident)."""


def minutes(seconds: float) -> str:
    """A duration in the words a person reads: 40 s, 37 min, 5.2 h, 3.0 days."""
    if seconds < 120:
        return f"{max(0, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{max(0, round(seconds / 60))} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def timings(incident: Incident, settings: Measures, now: datetime) -> Dict[str, Any]:
    """One incident's times (the export lists these) and what missed its target, in words."""
    notify = None if incident.notified_at is None else (incident.notified_at - incident.detected_at).total_seconds()
    ack = None
    if incident.acknowledged_at is not None:
        ack = (incident.acknowledged_at - incident.detected_at).total_seconds()
    ack_target = settings.acknowledge_within_s.get(incident.severity)
    missed: List[str] = []
    target = settings.notify_within_s
    name = f"incident {incident.id}"
    waited = (now - incident.detected_at).total_seconds()
    if not incident.held:
        if notify is not None and notify > target:
            missed.append(f"{name} was first notified {minutes(notify)} after detection (target {minutes(target)})")
        if notify is None and waited > target:
            missed.append(f"{name} has not been notified {minutes(waited)} after detection (target {minutes(target)})")
    if ack_target is not None:
        name = f"{name} ({incident.severity})"
        goal = f"(target {minutes(ack_target)})"
        if ack is not None and ack > ack_target:
            missed.append(f"{name} was acknowledged {minutes(ack)} after detection {goal}")
        if ack is None and waited > ack_target:
            missed.append(f"{name} is not acknowledged {minutes(waited)} after detection {goal}")
    return {
        "incident": incident.id,
        "severity": incident.severity,
        "detected_at": incident.detected_at.isoformat(),
        "notified_after_s": notify,
        "acknowledged_after_s": ack,
        "held": incident.held,
        "notify_target_s": target,
        "acknowledge_target_s": ack_target,
        "missed": missed,
    }


def judge(
    incidents: Sequence[Incident], failed_channels: Dict[str, str], channels: int, settings: Measures, now: datetime
) -> Result:
    """``failed_channels``: channel -> its last delivery's error, for channels whose last delivery failed."""
    rows = [timings(i, settings, now) for i in incidents]
    missed = [m for r in rows for m in r["missed"]]
    failed = "; ".join(
        f"channel {name}'s last delivery failed ({error})" for name, error in sorted(failed_channels.items())
    )
    observed = {"period_days": settings.period_days, "incidents": rows, "failed_channels": failed_channels}
    tail = f"; {failed}" if failed else ""
    if missed:
        more = f" (and {len(missed) - 2} more)" if len(missed) > 2 else ""
        return Result(NOTIFICATION, Verdict.FAILING, observed, "; ".join(missed[:2]) + more + tail)
    period = f"in the last {settings.period_days} days"
    if not rows:
        if not channels:
            message = f"no incident {period}, and no alert channel is configured to notify one"
            return Result(NOTIFICATION, Verdict.UNKNOWN, observed, message)
        return Result(NOTIFICATION, Verdict.PASSING, observed, f"no incident {period}{tail}")
    done = [r["notified_after_s"] for r in rows if r["notified_after_s"] is not None]
    waiting = [r["incident"] for r in rows if r["notified_after_s"] is None and not r["held"]]
    held = sum(1 for r in rows if r["held"])
    count = f"{len(rows)} incident{'s' if len(rows) != 1 else ''} {period}"
    parts = [count]
    if done:
        parts.append(
            f"{len(done)} notified within {minutes(settings.notify_within_s)} (the slowest after {minutes(max(done))})"
        )
    if waiting:
        parts.append(f"incident {', '.join(map(str, waiting))} not notified yet, still within the target")
    if held:
        parts.append(f"{held} held by a maintenance window")
    message = "; ".join(parts) + tail
    return Result(NOTIFICATION, Verdict.PASSING, observed, message)
