"""Is the alerting pipeline working?  The checks behind ``/healthz``'s ``degraded``, in sentences.

Pure: it judges what :mod:`central.runtime.pipeline` read and when this process's duty round
last succeeded; ``/healthz``, ``/metrics`` (``tillsyn_health_problem``) and the dashboard all
show its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from central.config import Health
from central.runtime.pipeline import Pipeline

CHECKS = ("duties_overdue", "channel_failing", "outbox_stuck")
IN_GENERAL = {
    "duties_overdue": "the duty round is overdue: incidents are neither opened nor resolved meanwhile",
    "channel_failing": "an alert channel has been failing",
    "outbox_stuck": "a notification has waited too long to be delivered",
}
"""Each check said without naming channels or their errors: ``/healthz``'s reasons for a caller who
may not read ``/metrics`` (an agent on a tenant's node), as the dashboard tells a person limited to
some tenants only that alerting is degraded."""


@dataclass(frozen=True)
class Problem:
    check: str
    """One of :data:`CHECKS` (a bounded metric label)."""
    reason: str
    """A sentence for a person, with the observed value."""


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def assess(
    settings: Health, duty_interval_s: float, pipeline: Optional[Pipeline], since_duty_ok_s: Optional[float]
) -> List[Problem]:
    """``since_duty_ok_s``: seconds since this process's last successful duty round (None: it runs none)."""
    problems: List[Problem] = []
    overdue = settings.overdue_after(duty_interval_s)
    if since_duty_ok_s is not None and since_duty_ok_s > overdue:
        problems.append(
            Problem(
                "duties_overdue",
                f"the duty round last succeeded {_duration(since_duty_ok_s)} ago "
                f"(it runs every {duty_interval_s:g} s; overdue after {_duration(overdue)}): "
                "incidents are neither opened nor resolved meanwhile",
            )
        )
    if pipeline is None:
        return problems
    for name, channel in sorted(pipeline.channels.items()):
        if channel.failing_s > settings.channel_failing_s:
            error = f": {channel.last_error}" if channel.last_error else ""
            problems.append(
                Problem(
                    "channel_failing",
                    f"channel {name} has failed for {_duration(channel.failing_s)}, "
                    f"{channel.waiting} notification(s) wait{error}",
                )
            )
        elif channel.oldest_waiting_s > settings.outbox_age_s:
            problems.append(
                Problem(
                    "outbox_stuck",
                    f"channel {name}'s oldest notification has waited {_duration(channel.oldest_waiting_s)} "
                    f"({channel.waiting} waiting; limit {_duration(settings.outbox_age_s)})",
                )
            )
    return problems
