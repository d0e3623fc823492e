"""M08 erasure: retention is configured and its duty runs; nothing is kept past its limit; what was
deleted and when (the chain checkpoints that keep ``verify`` intact); erasure requests carried
out within three months.  Pure: judged from rows the caller read (``judge.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Sequence

from central.judging.own.notification import minutes
from central.judging.own.rules import ERASURE
from evidence.rules import Result, Verdict

RETENTION_OVERDUE_S = 3600.0
"""The retention duty runs every 10 minutes in a process with duties; an hour without a run is overdue."""
GRACE = timedelta(days=1)
"""A report may outlive its limit by up to a day: retention deletes by age in days, in batches."""


@dataclass(frozen=True)
class Request:
    reference: str
    requested_at: datetime
    due_at: datetime
    erased_at: Optional[datetime]


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def judge(
    hostname: str,
    reports_days: int,
    last_run: Optional[datetime],
    too_old: Optional[datetime],
    checkpoint: Optional[Dict[str, Any]],
    requests: Sequence[Request],
    now: datetime,
) -> Result:
    """``too_old``: the receipt time of the node's oldest report past the retention limit (None: none);
    ``checkpoint``: its retention checkpoint ({chain_index, pruned_at}) when reports were deleted."""
    observed: Dict[str, Any] = {
        "reports_days": reports_days,
        # not the last run's time: it moves every 10 minutes, and every node's finding would be rewritten
        "retention_on_time": last_run is not None and (now - last_run).total_seconds() <= RETENTION_OVERDUE_S,
        "oldest_report_past_limit": too_old.isoformat() if too_old else None,
        "deleted_through_entry": checkpoint["chain_index"] if checkpoint else None,
        "deleted_at": checkpoint["pruned_at"].isoformat() if checkpoint else None,
        "erasure_requests": [
            {
                "reference": r.reference,
                "requested_at": r.requested_at.isoformat(),
                "due_at": r.due_at.isoformat(),
                "erased_at": r.erased_at.isoformat() if r.erased_at else None,
            }
            for r in requests
        ],
    }
    problems: List[str] = []
    since_run = None if last_run is None else (now - last_run).total_seconds()
    overdue = since_run is not None and since_run > RETENTION_OVERDUE_S
    if too_old is not None:
        problems.append(
            f"node {hostname} keeps a report received {_day(too_old)}, older than the {reports_days} days retention"
        )
    for r in requests:
        if r.erased_at is None and now > r.due_at:
            made, due = _day(r.requested_at), _day(r.due_at)
            problems.append(f"erasure request {r.reference} of {made} is not carried out; it was due {due}")
    if overdue and since_run is not None:
        problems.append(f"the retention duty last ran {minutes(since_run)} ago (it runs every 10 min)")
    # the retention duty alone overdue fails every node alike: one incident for it, not one per node
    observed["centre_wide"] = overdue and len(problems) == 1
    if problems:
        return Result(ERASURE, Verdict.FAILING, observed, "; ".join(problems))
    if last_run is None:
        message = (
            f"the retention duty has not run yet, so it cannot be told whether node {hostname}'s old data is deleted"
        )
        return Result(ERASURE, Verdict.UNKNOWN, observed, message)
    parts = [f"node {hostname}'s reports are kept {reports_days} days, none older"]
    parts.append("the retention duty runs on time")
    if checkpoint:
        parts.append(
            f"entries up to {checkpoint['chain_index']} deleted on {_day(checkpoint['pruned_at'])}, "
            "their chain checkpoint kept"
        )
    for r in requests:
        if r.erased_at is not None:
            parts.append(f"erasure request {r.reference} carried out {_day(r.erased_at)} (made {_day(r.requested_at)})")
        else:
            parts.append(f"erasure request {r.reference} of {_day(r.requested_at)} is due {_day(r.due_at)}")
    return Result(ERASURE, Verdict.PASSING, observed, "; ".join(parts))
