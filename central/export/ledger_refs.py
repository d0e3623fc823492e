"""The ledger facts an export cites: each node's chain head at a moment, and the cited reports.

Each cited report is listed with the hash of the entry before it (``prev_hash``), which the ledger
does not store (since migration 0018): it is entry ``chain_index - 1``'s hash, found through the
node's chain index (``uq_reports_agent_chain``), the retention checkpoint's when retention deleted
that entry, or genesis for entry 1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import Connection, func, select

from central.db.report_bodies import Bodies, UnreadableBody
from central.db.schema import REPORT_KEY, report_key, reports
from central.export.model import iso
from central.ingest.ledger import GENESIS
from central.retention.sweep import Checkpoint
from evidence.signing import b64

_FIELDS = (
    reports.c.report_id,
    reports.c.seq,
    reports.c.chain_index,
    reports.c.entry_hash,
    reports.c.body_sha256,
    reports.c.collected_at,
    reports.c.received_at,
    reports.c.erased_sha256,
)


def head_at(conn: Connection, agent_id: str, moment: datetime, checkpoint: Optional[Checkpoint]) -> Dict[str, Any]:
    """Chain length and head hash as they stood at ``moment``.

    When the entries of that moment were deleted by retention, the checkpoint answers if it
    is the entry in question; otherwise the head is unknown (``pruned``: true).
    """
    index = conn.execute(
        select(func.max(reports.c.chain_index)).where(reports.c.agent_id == agent_id, reports.c.received_at <= moment)
    ).scalar()
    if index is not None:
        head = conn.execute(
            select(reports.c.entry_hash).where(reports.c.agent_id == agent_id, reports.c.chain_index == index)
        ).scalar_one()
        return {"length": int(index), "head": head, "pruned": False}
    if checkpoint is None:
        return {"length": 0, "head": GENESIS, "pruned": False}
    if checkpoint.received_at <= moment:  # every kept entry came later: the checkpoint was the head
        return {"length": checkpoint.chain_index, "head": checkpoint.entry_hash, "pruned": False}
    return {"length": None, "head": None, "pruned": True}


def _row(
    row: Any, with_evidence: bool, body: Optional[bytes] = None, signature: Optional[str] = None
) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "report_id": row.report_id,
        "seq": int(row.seq),
        "chain_index": int(row.chain_index),
        "prev_hash": None,  # derived: _link
        "entry_hash": row.entry_hash,
        "body_sha256": row.body_sha256,
        "collected_at": iso(row.collected_at),
        "received_at": iso(row.received_at),
        "in_ledger": True,
    }
    if row.erased_sha256 is not None:  # erased on request (M08): the body is the scrubbed one
        out["erased_sha256"] = row.erased_sha256
    if with_evidence:
        out["body"] = b64(bytes(body or b""))
        out["signature"] = signature
    return out


def _link(conn: Connection, agent_id: str, found: Dict[str, Dict[str, Any]], checkpoint: Optional[Checkpoint]) -> None:
    """Each found report's ``prev_hash``: the entry before it (one lookup per report through
    ``uq_reports_agent_chain``, none when that entry is found too), the checkpoint, or genesis.

    Left ``None`` (null in the export) when the entry before it is missing from the ledger and no
    checkpoint accounts for it: the export's checker says so, and ``verify`` names the break."""
    hashes: Dict[int, str] = {int(r["chain_index"]): r["entry_hash"] for r in found.values()}
    if checkpoint is not None:
        hashes.setdefault(checkpoint.chain_index, checkpoint.entry_hash)
    hashes.setdefault(0, GENESIS)
    wanted = sorted({int(r["chain_index"]) - 1 for r in found.values()} - hashes.keys())
    for i in range(0, len(wanted), 500):
        rows = conn.execute(
            select(reports.c.chain_index, reports.c.entry_hash).where(
                reports.c.agent_id == agent_id, reports.c.chain_index.in_(wanted[i : i + 500])
            )
        )
        hashes.update({int(index): digest for index, digest in rows})
    for report in found.values():
        report["prev_hash"] = hashes.get(int(report["chain_index"]) - 1)


def cited_reports(
    conn: Connection,
    agent_id: str,
    report_ids: Iterable[str],
    head_indexes: Iterable[int],
    with_evidence: bool,
    checkpoint: Optional[Checkpoint] = None,
) -> List[Dict[str, Any]]:
    """The reports an export cites (by id, plus the head entries), in chain order.

    A cited report retention has deleted is listed with ``in_ledger``: false and nothing else.
    ``checkpoint``: the node's retention checkpoint, whose hash is the first kept entry's ``prev_hash``.
    """
    wanted = sorted(set(report_ids))
    extra = (reports.c.body, reports.c.signature) if with_evidence else ()
    found: Dict[str, Dict[str, Any]] = {}
    bodies = Bodies(conn)

    def signed(row: Any) -> Tuple[Any, ...]:
        """The body as signed and its signature (the export's checker finds an unreadable body's
        empty bytes not matching its hash, as it finds a changed one)."""
        if not with_evidence:
            return ()
        try:
            return bodies.raw(agent_id, row.body), row.signature
        except UnreadableBody:
            return b"", row.signature

    for i in range(0, len(wanted), 500):
        ids = set(wanted[i : i + 500])
        keys = sorted({r[:REPORT_KEY] for r in ids})  # through ix_reports_report_key; the ids compared here
        rows = conn.execute(
            select(*_FIELDS, *extra).where(report_key(reports.c.report_id).in_(keys), reports.c.agent_id == agent_id)
        )
        for row in rows:
            if row.report_id in ids:
                found[row.report_id] = _row(row, with_evidence, *signed(row))
    for index in head_indexes:
        head = conn.execute(
            select(*_FIELDS, *extra).where(reports.c.agent_id == agent_id, reports.c.chain_index == index)
        ).first()
        if head is not None:
            found[head.report_id] = _row(head, with_evidence, *signed(head))
    _link(conn, agent_id, found, checkpoint)
    missing = [{"report_id": r, "in_ledger": False} for r in wanted if r not in found]
    return sorted(found.values(), key=lambda r: r["chain_index"]) + missing
