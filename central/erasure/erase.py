"""Erasure of a node's personal data on request (M08): requests with their deadline, and carrying
one out.  Every report body of the node is scrubbed (central/erasure/scrub.py), and the pieces of
evidence only the original bodies referred to are deleted (central/db/report_bodies.py); the chain is left
as it was, because it commits to the original body's hash and signature, which stay recorded; the
erased body's own hash is recorded beside them, so ``verify`` still checks every link and can tell
an erased body from a changed one.  The latest evidence, the findings' values and sentences, their
history and the node's incidents lose the same values.  Each step is in the audit trail."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, Optional, Set

from sqlalchemy import Connection, or_, select, text, update

from central import audit
from central.db import report_bodies
from central.db.schema import (
    agents,
    erasures,
    finding_changes,
    findings,
    incident_events,
    incidents,
    latest_evidence,
    outbox,
    reports,
)
from central.erasure.scrub import Scrubber

DEADLINE = timedelta(days=90)
"""GDPR Art. 17 as the hosting company's policy words it: on request, within three months at the latest."""
BATCH = 500
# the erasure's advisory lock keys, one per node: hashtextextended(agent id, 7118) (enrolment's seed is 7117)
_HOLD = text("SELECT pg_advisory_xact_lock(hashtextextended(v, 7118)) FROM unnest(CAST(:ids AS text[])) AS v")
_HOLD_SHARED = text(
    "SELECT pg_advisory_xact_lock_shared(hashtextextended(v, 7118)) FROM unnest(CAST(:ids AS text[])) AS v"
)


def hold_nodes(conn: Connection, agent_ids: Iterable[str], shared: bool) -> None:
    """On PostgreSQL, the erasure's lock on these nodes until the transaction ends: an erasure holds its node's
    alone, the evaluator holds the nodes of the reports it judges together (so it never writes values it read
    before an erasure into the rows the erasure scrubbed, and an erasure never starts in the middle of a judged
    batch). Ingest does not take it. SQLite needs none: a write transaction has the database to itself."""
    if conn.dialect.name != "postgresql":
        return
    # one statement (an erasure holds one node's lock only, so no order of taking them can deadlock)
    conn.execute(_HOLD_SHARED if shared else _HOLD, {"ids": sorted(set(agent_ids))}).all()


class EraseError(Exception):
    """The erasure cannot be done as asked; the message says why.  Nothing was changed."""


@dataclass(frozen=True)
class Erased:
    erasure_id: str
    agent_id: str
    hostname: str
    reference: str
    requested_at: datetime
    erased_at: datetime
    reports: int
    values: int


def find_node(conn: Connection, node: str) -> Any:
    """A node by agent id or by hostname (which must then be unique)."""
    rows = conn.execute(select(agents).where(or_(agents.c.id == node, agents.c.hostname == node))).mappings().all()
    if not rows:
        raise EraseError(f"no node {node!r} (see: tillsyn-central agent list)")
    if len(rows) > 1:
        ids = ", ".join(r["id"] for r in rows)
        raise EraseError(f"{len(rows)} nodes are called {node!r} ({ids}): name one by its agent id")
    return rows[0]


def request(
    conn: Connection, node: str, reference: str, requested_at: datetime, actor: str, now: datetime, source: str
) -> Dict[str, Any]:
    """Record a request to be carried out later (by :func:`erase`); due three months after it was made."""
    if requested_at > now + timedelta(minutes=5):
        raise EraseError(f"the request cannot have been made in the future ({requested_at:%Y-%m-%d %H:%M} UTC)")
    row = find_node(conn, node)
    if conn.execute(select(erasures.c.id).where(erasures.c.reference == reference)).first() is not None:
        raise EraseError(f"an erasure request {reference!r} is already recorded")
    values = {
        "id": uuid.uuid4().hex,
        "agent_id": row["id"],
        "reference": reference,
        "requested_at": requested_at,
        "due_at": requested_at + DEADLINE,
        "recorded_by": actor,
        "recorded_at": now,
    }
    conn.execute(erasures.insert().values(**values))
    detail = {"reference": reference, "requested_at": requested_at.isoformat(), "due_at": values["due_at"].isoformat()}
    audit.record(conn, now, actor, "node.erase_requested", row["id"], detail, source)
    return values


def _scrub_rows(conn: Connection, table: Any, key: Any, columns: Dict[str, str], scrubber: Scrubber) -> None:
    """Each ``columns`` entry: column name -> "json" or "text"; rows whose values change are written."""
    for row in conn.execute(select(table).where(key)).mappings().all():
        changed = {}
        for name, kind in columns.items():
            old = row[name]
            new = scrubber.in_json(old) if kind == "json" else scrubber.in_text(old)
            if new != old:
                changed[name] = new
        if changed:
            primary = [c for c in table.primary_key.columns]
            conn.execute(update(table).where(*[c == row[c.name] for c in primary]).values(**changed))


def erase(conn: Connection, node: str, reference: Optional[str], actor: str, now: datetime, source: str) -> Erased:
    """Carry out the request ``reference`` (recorded before, or made now when it is new)."""
    row = find_node(conn, node)
    agent_id = row["id"]
    pending: Any = None
    if reference is not None:
        pending = conn.execute(select(erasures).where(erasures.c.reference == reference)).mappings().first()
        if pending is not None and pending["agent_id"] != agent_id:
            raise EraseError(f"request {reference!r} is for node {pending['agent_id']}, not {agent_id}")
        if pending is not None and pending["erased_at"] is not None:
            raise EraseError(f"request {reference!r} was carried out on {pending['erased_at']:%Y-%m-%d %H:%M} UTC")
    if pending is None:
        pending = request(conn, agent_id, reference or f"erase-{now:%Y%m%d%H%M%S}", now, actor, now, source)
    erasure_id = pending["id"]
    hold_nodes(conn, [agent_id], shared=False)  # the evaluator finishes the node's reports it is judging first
    if conn.dialect.name == "postgresql":  # ingest of this node waits: no report may refer to a piece deleted below
        conn.execute(select(agents.c.id).where(agents.c.id == agent_id).with_for_update(key_share=True)).all()
    scrubber = Scrubber()
    erased_reports = 0
    bodies = report_bodies.Bodies(conn)
    referenced: Set[bytes] = set()
    dictionaries: report_bodies.Dictionaries = {}
    last = -1
    while True:  # in chain order, a batch at a time (a node can have many reports)
        batch = conn.execute(
            select(reports.c.id, reports.c.chain_index, reports.c.body)
            .where(reports.c.agent_id == agent_id, reports.c.chain_index > last)
            .order_by(reports.c.chain_index)
            .limit(BATCH)
        ).all()
        if not batch:
            break
        for pk, index, stored in batch:
            last = index
            try:
                body = bodies.raw(agent_id, stored)
            except report_bodies.UnreadableBody as err:
                raise EraseError(
                    f"report {index} of the node cannot be read ({err}): see tillsyn-central verify"
                ) from err
            new = scrubber.report(body)
            if new == body and not report_bodies.against_dictionary(stored):
                referenced |= bodies.references(agent_id, stored)
                continue
            # the scrubbed body's own pieces, against a dictionary made of scrubbed bodies only (an
            # unchanged tsk2 or tsk3 body too: its dictionary may be made of an unscrubbed one)
            kept = report_bodies.store(conn, agent_id, new, now, dictionaries)
            referenced |= bodies.references(agent_id, kept)
            if new == body:
                conn.execute(update(reports).where(reports.c.id == pk).values(body=kept))
                continue
            conn.execute(
                update(reports)
                .where(reports.c.id == pk)
                .values(body=kept, erased_sha256=hashlib.sha256(new).hexdigest(), erasure_id=erasure_id)
            )
            erased_reports += 1
    report_bodies.keep_only(conn, agent_id, referenced)  # the pieces with personal data go, old dictionaries too
    report_bodies.forget(agent_id)
    mine = latest_evidence.c.agent_id == agent_id
    _scrub_rows(conn, latest_evidence, mine, {"record": "json"}, scrubber)
    _scrub_rows(conn, findings, findings.c.agent_id == agent_id, {"observed": "json"}, scrubber)
    said = {"observed": "json", "message": "text"}  # message: the sentence of each change (migration 0014)
    _scrub_rows(conn, finding_changes, finding_changes.c.agent_id == agent_id, said, scrubber)
    told = {"observed": "json", "title": "text", "message": "text"}  # message: the sentence people were told
    _scrub_rows(conn, incidents, incidents.c.agent_id == agent_id, told, scrubber)
    theirs = select(incidents.c.id).where(incidents.c.agent_id == agent_id)
    _scrub_rows(conn, incident_events, incident_events.c.incident_id.in_(theirs), {"detail": "text"}, scrubber)
    _scrub_rows(conn, outbox, outbox.c.incident_id.in_(theirs), {"message": "text"}, scrubber)  # each notification's
    conn.execute(
        update(erasures)
        .where(erasures.c.id == erasure_id)
        .values(erased_at=now, erased_by=actor, reports=erased_reports, erased_values=scrubber.count)
    )
    detail = {"reference": pending["reference"], "reports": erased_reports, "values": scrubber.count}
    audit.record(conn, now, actor, "node.erase", agent_id, detail, source)
    return Erased(
        erasure_id,
        agent_id,
        row["hostname"],
        pending["reference"],
        pending["requested_at"],
        now,
        erased_reports,
        scrubber.count,
    )
