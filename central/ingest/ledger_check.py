"""``tillsyn-central verify``: every node's chain, entry by entry, against the stored node record,
from the retention checkpoint where there is one, once the checkpoint is shown to be retention's
(central/retention/checkpoint_origin.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator, List, Optional, Tuple

from sqlalchemy import Connection, Engine, func, select

from central.clock import utcnow
from central.config import Retention
from central.db.engine import read_tx, snapshot_tx
from central.db.report_bodies import Bodies, UnreadableBody
from central.db.schema import agents, erasures, reports
from central.ingest.ledger import Break, Entry, verify_chain
from central.retention.checkpoint_origin import Judged, judge
from central.retention.sweep import checkpoints


def ledger_entries(conn: Connection, agent_id: str) -> Iterator[Entry]:
    """A node's stored chain entries in order (streamed); each one's previous hash is the entry
    hash of the one before it (not stored since migration 0018)."""
    rows = conn.execute(
        select(
            reports.c.agent_id,
            reports.c.chain_index,
            reports.c.entry_hash,
            reports.c.body,
            reports.c.body_sha256,
            reports.c.signature,
            reports.c.report_id,
            reports.c.erased_sha256,
        )
        .where(reports.c.agent_id == agent_id)
        .order_by(reports.c.chain_index)
        .execution_options(yield_per=500)
    )
    bodies = Bodies(conn)
    for row in rows:
        unreadable = None
        try:
            body = bodies.raw(agent_id, row.body)
        except UnreadableBody as err:
            body, unreadable = b"", str(err)
        yield Entry(
            row.agent_id,
            row.chain_index,
            row.entry_hash,
            body,
            row.body_sha256,
            row.signature,
            row.report_id,
            row.erased_sha256,
            unreadable=unreadable,
        )


@dataclass
class Verified:
    checked: int = 0
    problems: List[Break] = field(default_factory=list)
    relied_on: List[Judged] = field(default_factory=list)
    """The retention checkpoints chains were verified from (those that are not retention's are problems too)."""
    erased: List[str] = field(default_factory=list)
    """Per erasure carried out (M08), in words: whose reports' signatures cannot be checked, and why."""


def erasure_notes(conn: Connection, agent_id: Optional[str] = None) -> List[str]:
    """'node web1: 12 reports' signatures not checkable: erased on 2026-12-07 by request R-17 (…)'."""
    query = (
        select(agents.c.hostname, erasures.c.reference, erasures.c.erased_at, func.count(reports.c.id))
        .join(erasures, erasures.c.agent_id == agents.c.id)
        .join(reports, reports.c.erasure_id == erasures.c.id)
        .where(erasures.c.erased_at.is_not(None))
        .group_by(agents.c.hostname, erasures.c.reference, erasures.c.erased_at)
        .order_by(erasures.c.erased_at)
    )
    if agent_id:
        query = query.where(agents.c.id == agent_id)
    return [
        f"node {host}: {count} report(s)' signatures not checkable: erased on {at:%Y-%m-%d %H:%M} UTC "
        f"by request {reference} (personal data removed; their chain links and erased bodies verified)"
        for host, reference, at, count in conn.execute(query)
    ]


def verify_ledger(
    engine: Engine,
    agent_id: Optional[str] = None,
    retention: Optional[Retention] = None,
    now: Optional[datetime] = None,
) -> Verified:
    done = Verified()
    with read_tx(engine) as conn:
        query = select(agents.c.id, agents.c.public_key)  # its length and head: in its own snapshot, below
        if agent_id:
            query = query.where(agents.c.id == agent_id)
        marks = judge(
            conn, checkpoints(conn, [agent_id] if agent_id else None), retention or Retention(), now or utcnow()
        )
        nodes = conn.execute(query).all()
    for node in nodes:
        done.checked += 1
        start = marks.get(node.id)  # retention removed the oldest reports: the chain goes on from there
        if start is not None:
            done.relied_on.append(start)
            if start.problem is not None:
                done.problems.append(Break(node.id, None, None, f"checkpoint {start.problem}"))
        # one snapshot per node: its rows and their pieces as of one moment (an erasure may rewrite
        # both meanwhile), without holding PostgreSQL's cleanup back for the whole fleet's walk
        with snapshot_tx(engine) as conn:
            length, head = conn.execute(
                select(agents.c.ledger_length, agents.c.ledger_head).where(agents.c.id == node.id)
            ).one()
            done.problems += verify_chain(
                node.id,
                node.public_key,
                ledger_entries(conn, node.id),
                length,
                head,
                *(() if start is None else (start.mark.chain_index, start.mark.entry_hash)),
            )
    with read_tx(engine) as conn:
        done.erased = erasure_notes(conn, agent_id)
    return done


def verify_store(
    engine: Engine, agent_id: Optional[str] = None, retention: Optional[Retention] = None
) -> Tuple[int, List[Break]]:
    """(nodes checked, every break): :func:`verify_ledger` without the checkpoints it relied on."""
    done = verify_ledger(engine, agent_id, retention)
    return done.checked, done.problems
