"""How far the centre has judged what it received: the latest moment an export can state.

Ingest stores a report and answers; the evaluator judges it a moment later and records the
finding changes at the report's ``received_at`` (central/judging/evaluation.py).  Until then the
finding history up to that time is incomplete, so an export ending at or after the oldest
unjudged report's ``received_at`` would say something the same export rebuilt later does
not.  An export made "now" ends just before that report instead; an export asked for a
later moment, and the verification of one, wait until the centre has judged it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import Connection, func, select

from central.db.schema import agents, pending_evaluation, reports
from central.export.model import ExportError, Request, iso

_JUST_BEFORE = timedelta(microseconds=1)
"""Times are kept to the microsecond on both databases."""


@dataclass(frozen=True)
class Pending:
    """Reports of the scope stored but not yet judged: how many, and when the oldest was received."""

    count: int
    oldest: Optional[datetime]

    def holds_back(self, moment: datetime) -> bool:
        """True when the history up to ``moment`` is not complete yet."""
        return self.oldest is not None and self.oldest <= moment

    @property
    def latest(self) -> Optional[datetime]:
        """The latest moment whose history is complete (None: every moment so far)."""
        return None if self.oldest is None else self.oldest - _JUST_BEFORE

    def why(self) -> str:
        return f"the centre is still judging {self.count} report(s), the oldest received at {iso(self.oldest)}"


def pending(conn: Connection, tenant: Optional[str]) -> Pending:
    """The unjudged reports of ``tenant``'s nodes (None: every node)."""
    query = select(func.count(), func.min(reports.c.received_at)).select_from(
        pending_evaluation.join(reports, reports.c.id == pending_evaluation.c.report_pk)
    )
    if tenant is not None:
        query = query.join(agents, agents.c.id == reports.c.agent_id).where(agents.c.tenant == tenant)
    count, oldest = conn.execute(query).one()
    return Pending(int(count), oldest)


def cap(req: Request, waiting: Pending) -> Request:
    """``req`` ending no later than the latest moment whose history is complete."""
    latest = waiting.latest
    if latest is None or req.end <= latest:
        return req
    if req.start is not None and req.start >= latest:
        raise ExportError(f"the period starts after what the centre has judged: {waiting.why()}; try again shortly")
    return replace(req, end=latest)


def settle(req: Request, waiting: Pending, given: Optional[str]) -> Request:
    """``req`` as the centre can state it: a moment the user gave (``given`` names its option,
    e.g. ``--at``) after the oldest unjudged report is refused; "now" is moved back before it."""
    if not waiting.holds_back(req.end):
        return req
    if given:
        raise ExportError(
            f"{given} {iso(req.end)}: {waiting.why()}, so the centre cannot say yet what was true then; "
            f"try again shortly, or give a time before {iso(waiting.oldest)}"
        )
    return cap(req, waiting)
