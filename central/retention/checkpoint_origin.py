"""Could retention have made a ledger checkpoint?  Verification starts a node's chain from its
checkpoint, so one that retention did not make would hide the reports deleted before it.

Retention deletes reports received before its cut-off (``reports_days`` ago), moves the node's
checkpoint to the last one deleted and records the round in the audit trail (``retention.run``,
at the checkpoint's ``pruned_at``, with the cut-off as ``reports_before``).  A checkpoint is
retention's when that round is recorded and the checkpoint's entry was received before its
cut-off.  When the round is older than the audit trail is kept (``audit_days``) and so cannot
be found, its entry must at least be older than reports are kept now.  A deleted report an
export cites is retention's to delete only under such a checkpoint and received (as the export
says) no later than the checkpoint's entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, List, Mapping, Optional

from sqlalchemy import Connection, select

from central.config import Retention
from central.db.schema import audit_log
from central.export.model import iso as _iso
from central.retention.sweep import ACTOR, Checkpoint


@dataclass(frozen=True)
class Judged:
    """A node's checkpoint, the cut-off of the retention round that made it (None: not recorded),
    and why retention cannot have made it (None: it can have)."""

    mark: Checkpoint
    cutoff: Optional[datetime]
    problem: Optional[str]

    def covers(self, index: Any) -> bool:
        """Entry ``index`` is at or before the checkpoint: deleted, by retention or not."""
        return isinstance(index, int) and index <= self.mark.chain_index

    def deletion(self, index: int, received_at: Optional[datetime], entry_hash: Any) -> Optional[str]:
        """Why covered entry ``index`` (as an export states it) is not retention's to delete; None: it is."""
        mark = self.mark
        if self.problem is not None:
            return f"deleted under a checkpoint retention did not make (checkpoint: {self.problem})"
        if received_at is None:
            return "deleted, and the export gives no time it was received to put that down to retention"
        if received_at > mark.received_at:
            return (
                f"deleted, but received at {_iso(received_at)}, after the last report retention deleted "
                f"(entry {mark.chain_index}, received {_iso(mark.received_at)})"
            )
        if index == mark.chain_index and entry_hash != mark.entry_hash:
            return f"entry hash is not the checkpoint's {mark.entry_hash}"
        return None

    def describe(self) -> str:
        """What verification relied on, for the person running it."""
        mark = self.mark
        why = (
            f"round's cut-off {_iso(self.cutoff)}"
            if self.cutoff is not None
            else "its audit entry is past audit_days; checked against reports_days"
        )
        return (
            f"CHECKPOINT {mark.agent_id}: entries 1-{mark.chain_index} deleted by retention at "
            f"{_iso(mark.pruned_at)} ({why}); verified on from entry {mark.chain_index} "
            f"(hash {mark.entry_hash}, received {_iso(mark.received_at)})"
        )


def _cutoffs(conn: Connection, moments: List[datetime]) -> Dict[datetime, datetime]:
    """Per retention round recorded at one of ``moments``: the cut-off it deleted reports before."""
    out: Dict[datetime, datetime] = {}
    for i in range(0, len(moments), 500):
        rows = conn.execute(
            select(audit_log.c.at, audit_log.c.detail).where(
                audit_log.c.actor == ACTOR,
                audit_log.c.action == "retention.run",
                audit_log.c.at.in_(moments[i : i + 500]),
            )
        )
        for at, detail in rows:
            try:
                cutoff = datetime.fromisoformat(str(detail["reports_before"]))
            except (KeyError, TypeError, ValueError):
                continue  # not a round's record as retention writes it
            if int(detail.get("reports") or 0) > 0 and cutoff.tzinfo is not None:
                out[at] = max(cutoff, out.get(at, cutoff))
    return out


def _problem(mark: Checkpoint, cutoff: Optional[datetime], settings: Retention, now: datetime) -> Optional[str]:
    at = f"at entry {mark.chain_index} (received {_iso(mark.received_at)}, made {_iso(mark.pruned_at)})"
    if cutoff is not None:
        if mark.received_at >= cutoff:
            return f"{at}: not received before the cut-off {_iso(cutoff)} of the retention round that made it"
        return None
    if mark.pruned_at >= now - timedelta(days=settings.audit_days):
        return f"{at}: no retention round that deleted reports is recorded in the audit trail at that time"
    if mark.received_at >= now - timedelta(days=settings.reports_days):
        return f"{at}: received within the {settings.reports_days} days reports are kept"
    return None


def judge(conn: Connection, marks: Mapping[str, Checkpoint], settings: Retention, now: datetime) -> Dict[str, Judged]:
    """Each node's checkpoint judged against the audit trail and the retention settings."""
    cutoffs = _cutoffs(conn, sorted({m.pruned_at for m in marks.values()}))
    out = {}
    for agent_id, mark in marks.items():
        cutoff = cutoffs.get(mark.pruned_at)
        out[agent_id] = Judged(mark, cutoff, _problem(mark, cutoff, settings, now))
    return out
