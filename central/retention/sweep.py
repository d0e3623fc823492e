"""Retention (M08): delete what is older than ``central.yaml``'s ``retention:`` periods, and say so.

Raw reports go as a prefix of each node's chain; the last pruned entry is kept as a
checkpoint (``ledger_checkpoints``) so the rest of the chain still verifies from it.
Pseudonymised values live in report bodies and ``latest_evidence`` and expire with them.
Finding history keeps, per node and rule, the one change still in force at the cut-off,
so the status at any kept moment can be reconstructed.  Every run that deletes something
records it in the audit trail as ``system:retention``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Dict, Optional

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    String,
    Table,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased

from central import audit
from central.config import Retention
from central.db import report_bodies
from central.db.engine import try_advisory_lock
from central.db.schema import (
    audit_log,
    duty_runs,
    finding_changes,
    incident_events,
    incidents,
    latest_evidence,
    metadata,
    outbox,
    reports,
)
from central.db.types import UTCDateTime

log = logging.getLogger("tillsyn.central.retention")
ACTOR = "system:retention"
_PG_RETENTION_LOCK = 0x7117_6A11

ledger_checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.id"), primary_key=True),
    Column("chain_index", BigInteger, nullable=False),  # the last pruned entry
    Column("entry_hash", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("pruned_at", UTCDateTime(), nullable=False),
)
"""Per node: reports up to ``chain_index`` were deleted; verification starts from ``entry_hash``."""

# The age queries below read these; without them each round would scan whole tables.
Index("ix_reports_received_at", reports.c.received_at)
Index("ix_finding_changes_at", finding_changes.c.at)
Index("ix_incidents_resolved_at", incidents.c.resolved_at)


@dataclass(frozen=True)
class Checkpoint:
    agent_id: str
    chain_index: int
    entry_hash: str
    seq: int
    received_at: datetime
    pruned_at: datetime
    """When retention last moved it: the time of its ``retention.run`` audit entry."""


@dataclass
class Pruned:
    ran: bool = True
    more: bool = False
    """Old reports are left for the next round (see ``batch``)."""
    reports: int = 0
    latest_evidence: int = 0
    nodes: int = 0
    finding_changes: int = 0
    incidents: int = 0
    incident_events: int = 0
    audit_entries: int = 0
    evidence_pieces: int = 0
    """Pieces of evidence no report left refers to (central/db/report_bodies.py)."""

    def counts(self) -> Dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k not in ("ran", "more")}

    @property
    def anything(self) -> bool:
        return any(self.counts().values())


def checkpoints(conn: Connection, agent_ids: Optional[list[str]] = None) -> Dict[str, Checkpoint]:
    query = select(ledger_checkpoints)
    if agent_ids is not None:
        query = query.where(ledger_checkpoints.c.agent_id.in_(agent_ids))
    return {
        row.agent_id: Checkpoint(row.agent_id, row.chain_index, row.entry_hash, row.seq, row.received_at, row.pruned_at)
        for row in conn.execute(query)
    }


def _prune_reports(conn: Connection, cutoff: datetime, now: datetime, done: Pruned, batch: int) -> None:
    """Delete each node's chain prefix received before ``cutoff``; move its checkpoint forward."""
    ends = conn.execute(
        select(reports.c.agent_id, func.max(reports.c.chain_index))
        .where(reports.c.received_at < cutoff)
        .group_by(reports.c.agent_id)
    ).all()
    marks = checkpoints(conn, [agent_id for agent_id, _ in ends])
    for agent_id, old_end in ends:
        mark = marks.get(agent_id)
        # At most ``batch`` entries per node and round: a first run over years of reports
        # must not hold the write lock for minutes; the next rounds carry on.
        last = conn.execute(
            select(func.max(reports.c.chain_index)).where(
                reports.c.agent_id == agent_id,
                reports.c.chain_index <= min(old_end, (mark.chain_index if mark else 0) + batch),
            )
        ).scalar()
        if last is None:
            continue
        done.more = done.more or last < old_end
        end = conn.execute(
            select(reports.c.entry_hash, reports.c.seq, reports.c.received_at).where(
                reports.c.agent_id == agent_id, reports.c.chain_index == last
            )
        ).one()
        prefix = and_(reports.c.agent_id == agent_id, reports.c.chain_index <= last)
        # Latest evidence that came from a report being deleted goes with it (newer rows stay).
        gone = conn.execute(
            delete(latest_evidence).where(
                latest_evidence.c.agent_id == agent_id,
                latest_evidence.c.report_id.in_(select(reports.c.report_id).where(prefix)),
            )
        )
        done.latest_evidence += int(gone.rowcount or 0)
        done.reports += int(conn.execute(delete(reports).where(prefix)).rowcount or 0)
        done.nodes += 1
        if last == old_end:  # every report of the node received before the cutoff is gone
            done.evidence_pieces += report_bodies.prune(conn, agent_id, cutoff)
        values = {"chain_index": last, "entry_hash": end.entry_hash, "seq": end.seq, "received_at": end.received_at}
        moved = conn.execute(
            update(ledger_checkpoints).where(ledger_checkpoints.c.agent_id == agent_id).values(pruned_at=now, **values)
        )
        if not moved.rowcount:
            conn.execute(ledger_checkpoints.insert().values(agent_id=agent_id, pruned_at=now, **values))


def _prune_history(conn: Connection, cutoff: datetime, done: Pruned) -> None:
    """Finding changes superseded before ``cutoff`` (the one in force then stays), and incidents
    resolved before it with their timelines and notifications."""
    newer = aliased(finding_changes)
    superseded = exists().where(
        newer.c.agent_id == finding_changes.c.agent_id,
        newer.c.rule_id == finding_changes.c.rule_id,
        newer.c.at < cutoff,
        or_(
            newer.c.at > finding_changes.c.at,
            and_(newer.c.at == finding_changes.c.at, newer.c.id > finding_changes.c.id),
        ),
    )
    gone = conn.execute(delete(finding_changes).where(finding_changes.c.at < cutoff, superseded))
    done.finding_changes += int(gone.rowcount or 0)
    old = select(incidents.c.id).where(incidents.c.status == "resolved", incidents.c.resolved_at < cutoff)
    done.incident_events += int(
        conn.execute(delete(incident_events).where(incident_events.c.incident_id.in_(old))).rowcount or 0
    )
    conn.execute(delete(outbox).where(outbox.c.incident_id.in_(old)))
    done.incidents += int(
        conn.execute(
            delete(incidents).where(incidents.c.status == "resolved", incidents.c.resolved_at < cutoff)
        ).rowcount
        or 0
    )


def run(conn: Connection, settings: Retention, now: datetime, batch: int = 5000, source: str = "duty") -> Pruned:
    """One retention round in the caller's write transaction; returns what was deleted.

    Reports go at most ``batch`` per node per round (``more`` says when some are left).
    """
    if not try_advisory_lock(conn, _PG_RETENTION_LOCK):
        return Pruned(ran=False)
    done = Pruned()
    _prune_reports(conn, now - timedelta(days=settings.reports_days), now, done, batch)
    _prune_history(conn, now - timedelta(days=settings.findings_history_days), done)
    audit_cutoff = now - timedelta(days=settings.audit_days)
    done.audit_entries = int(conn.execute(delete(audit_log).where(audit_log.c.at < audit_cutoff)).rowcount or 0)
    if done.anything:
        detail: Dict[str, object] = dict(done.counts())
        detail.update(
            reports_before=(now - timedelta(days=settings.reports_days)).isoformat(),
            history_before=(now - timedelta(days=settings.findings_history_days)).isoformat(),
            audit_before=audit_cutoff.isoformat(),
        )
        audit.record(conn, now, ACTOR, "retention.run", None, detail, source)
        log.info("retention: deleted %s", ", ".join(f"{v} {k}" for k, v in detail.items() if isinstance(v, int) and v))
    _ran(conn, now, done)
    return done


def _ran(conn: Connection, now: datetime, done: Pruned) -> None:
    """Remember this run (M08 judges whether retention runs within its interval)."""
    values = {"last_run_at": now, "detail": done.counts()}
    if not conn.execute(update(duty_runs).where(duty_runs.c.name == "retention").values(**values)).rowcount:
        conn.execute(duty_runs.insert().values(name="retention", **values))
