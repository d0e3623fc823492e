"""Report bodies stored as skeletons with each piece of evidence once per node (central/db/report_bodies.py):
the signed bytes come back exactly, ``verify`` and the export prove what they proved, a changed or
missing piece is found, erasure takes the pieces with personal data, retention the unused ones;
on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from central.config import Retention
from central.db import report_bodies
from central.db.engine import read_tx, write_tx
from central.db.schema import evidence_blobs, pending_evaluation, reports
from central.erasure.erase import erase
from central.export.build import build
from central.export.model import Request
from central.export.offline import offline
from central.ingest.ledger import body_hash
from central.ingest.ledger_check import verify_ledger, verify_store
from central.retention.sweep import run as retention_run
from central.runtime.service import Centre
from evidence.model import Evidence
from evidence.wire import Report, canonical
from tests.central.conftest import Node, decode, evidence_record

ROOT = Path(__file__).resolve().parents[3]
TELNETD = {"name": "telnetd", "exe": "/home/anna/bin/telnetd", "user": "anna", "pid": 4242}
ANNA = {
    "sockets": [{"protocol": "tcp", "address": "127.0.0.1", "port": 2323, "exposure": "loopback", "process": TELNETD}]
}
CHRONY = {"name": "chrony", "running": True, "synchronised": True, "offset_s": 0.000123, "stratum": 3}
TIMESYNCD = {"name": "timesyncd", "running": False, "synchronised": False, "reason": "not running"}


def _stored(centre: Centre, agent_id: str) -> List[Any]:
    with read_tx(centre.engine) as conn:
        return conn.execute(
            select(reports.c.id, reports.c.body, reports.c.body_sha256, reports.c.erased_sha256)
            .where(reports.c.agent_id == agent_id)
            .order_by(reports.c.chain_index)
        ).all()


def _pieces(centre: Centre, agent_id: str) -> Dict[bytes, bytes]:
    with read_tx(centre.engine) as conn:
        rows = conn.execute(
            select(evidence_blobs.c.digest, evidence_blobs.c.data).where(evidence_blobs.c.agent_id == agent_id)
        ).all()
    return {bytes(d): zlib.decompress(bytes(data)) for d, data in rows}


def _real_records() -> List[Evidence]:
    """Records of the shapes the tests use: a person's name in two of them, one too small to cut out."""
    return [
        evidence_record("ports", ANNA),
        evidence_record("accounts", {"users": [{"name": "anna", "home": "/home/anna", "uid": 1000}], "count": 1}),
        evidence_record("time", {"synchronised": True, "offset_s": 0.000123, "daemons": [CHRONY, TIMESYNCD]}),
        evidence_record("backup", {}),
    ]


def test_a_real_collection_joins_back_to_the_exact_bytes() -> None:
    """This machine's real ``tillsyn-agent collect --json``, every collector, as the agent signs it."""
    out = subprocess.run(
        [sys.executable, "-m", "agent.cli", "--config", str(ROOT / "config" / "agent.yaml"), "collect", "--json"],
        capture_output=True,
        check=True,
        timeout=25,
    ).stdout
    records = tuple(Evidence.from_dict(r) for r in json.loads(out))
    body = canonical(Report("a" * 32, "b" * 32, 7, datetime.now(timezone.utc), "test", records).to_dict())
    cut = report_bodies.split(body)
    assert cut is not None
    skeleton, pieces = cut
    assert report_bodies.join(skeleton, pieces) == body
    assert len(pieces) >= len(records) - 2  # all but the smallest records' parts are cut out
    assert len(skeleton) < len(body) / 10


def test_split_joins_back_to_the_exact_bytes_and_refuses_what_it_cannot_cut() -> None:
    at = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)
    body = canonical(Report("a" * 32, "b" * 32, 7, at, "test", tuple(_real_records())).to_dict())
    cut = report_bodies.split(body)
    assert cut is not None
    skeleton, pieces = cut
    assert skeleton.startswith(report_bodies.MAGIC) and len(pieces) == 3  # backup's record is too small
    assert report_bodies.join(skeleton, pieces) == body
    assert report_bodies.references(skeleton) == set(pieces)
    for damaged in (skeleton[:-3], skeleton[:-3] + bytes(3), skeleton[:20] + b"x" + skeleton[21:]):
        # damage is an error, or other bytes (which do not match body_sha256): never the body
        with contextlib.suppress(report_bodies.UnreadableBody):
            assert report_bodies.join(damaged, pieces) != body
    # a body that is not a canonical report is left whole; so is one with nothing worth cutting
    assert report_bodies.split(b'{"evidence": [], "seq": 1}') is None
    assert report_bodies.split(body.replace(b',"duration_ms":', b',"duration" :')) is None
    # every piece is needed: one missing is an error that names it, not other bytes
    gone = sorted(pieces)[0]
    try:
        report_bodies.join(skeleton, {d: p for d, p in pieces.items() if d != gone})
    except report_bodies.MissingPiece as err:
        assert gone.hex() in str(err)
    else:
        raise AssertionError("a missing piece went unnoticed")


def test_stored_once_read_back_exactly_and_verified(client: TestClient, centre: Centre, node: Node) -> None:
    sent = []
    for _ in range(4):  # the same evidence four times: its pieces stored once
        envelope = node.report(*_real_records())
        assert node.send(envelope).status_code == 200
        sent.append(envelope)
    rows = _stored(centre, node.agent_id)
    assert all(bytes(r.body).startswith(report_bodies.MAGIC) for r in rows)
    assert len(_pieces(centre, node.agent_id)) == 3
    with read_tx(centre.engine) as conn:
        bodies = report_bodies.Bodies(conn)
        for row, envelope in zip(rows, sent):
            raw = bodies.raw(node.agent_id, row.body)
            assert body_hash(raw) == row.body_sha256
            assert json.loads(raw) == decode(envelope)
    assert verify_store(centre.engine) == (1, [])
    # the evaluator reads a stored body when ingest's parsed copy is not at hand (another process stored it)
    with write_tx(centre.engine) as conn:
        conn.execute(pending_evaluation.insert().values(report_pk=rows[-1].id, agent_id=node.agent_id))
    done = centre.evaluate()
    assert (done.reports, done.unreadable, done.failed) == (1, 0, 0)
    # an old body stored whole (before migration 0011) reads as before
    with write_tx(centre.engine) as conn:
        raw = report_bodies.body_of(conn, node.agent_id, rows[0].body)
        conn.execute(update(reports).where(reports.c.id == rows[0].id).values(body=raw))
    assert verify_store(centre.engine) == (1, [])


def test_a_changed_or_missing_piece_is_found_by_verify(client: TestClient, centre: Centre, node: Node) -> None:
    for _ in range(2):
        assert node.send(node.report(*_real_records())).status_code == 200
    pieces = _pieces(centre, node.agent_id)
    ports = next(d for d, p in pieces.items() if b'"port":2323' in p)
    changed = zlib.compress(pieces[ports].replace(b'"port":2323', b'"port":2324'))
    with write_tx(centre.engine) as conn:
        mine = (evidence_blobs.c.agent_id == node.agent_id) & (evidence_blobs.c.digest == ports)
        conn.execute(update(evidence_blobs).where(mine).values(data=changed))
    checked, problems = verify_store(centre.engine)
    assert checked == 1
    assert sorted((p.chain_index, p.problem.split(":")[0]) for p in problems) == [
        (1, "body does not match its recorded hash (changed)"),
        (1, "signature"),
        (2, "body does not match its recorded hash (changed)"),
        (2, "signature"),
    ]
    with write_tx(centre.engine) as conn:
        conn.execute(evidence_blobs.delete().where(mine))
    _, problems = verify_store(centre.engine)
    assert [p.chain_index for p in problems] == [1, 2]
    assert all(f"evidence piece {ports.hex()} is not stored" in p.problem for p in problems)


def test_erasure_takes_the_pieces_with_personal_data_and_the_chain_verifies(
    client: TestClient, centre: Centre, node: Node
) -> None:
    for _ in range(3):
        assert node.send(node.report(*_real_records())).status_code == 200
    assert any(b"anna" in p for p in _pieces(centre, node.agent_id).values())
    now = datetime.now(timezone.utc)
    with write_tx(centre.engine) as conn:
        done = erase(conn, node.agent_id, "GDPR-1", "test", now, "test")
    assert done.reports == 3
    pieces = _pieces(centre, node.agent_id)
    assert pieces and not any(b"anna" in p for p in pieces.values())
    rows = _stored(centre, node.agent_id)
    assert all(r.erased_sha256 is not None for r in rows)
    with read_tx(centre.engine) as conn:
        bodies = report_bodies.Bodies(conn)
        assert all(body_hash(bodies.raw(node.agent_id, r.body)) == r.erased_sha256 for r in rows)
        assert all(b"anna" not in bodies.raw(node.agent_id, r.body) for r in rows)
        exported = build(conn, Request(end=datetime.now(timezone.utc) + timedelta(seconds=1), with_evidence=True))
    assert verify_store(centre.engine) == (1, [])
    checked = offline(json.loads(json.dumps(exported, default=str)))
    assert [p for p in checked.problems if not p.note] == [] and checked.reports_checked >= 1
    assert all("erased on request" in p.message for p in checked.problems)


def test_retention_deletes_pieces_no_report_left_refers_to(client: TestClient, centre: Centre, node: Node) -> None:
    old, new = evidence_record("ports", ANNA), evidence_record("ports", {"sockets": [], "counts": {"total": 0}})
    for _ in range(2):
        assert node.send(node.report(old)).status_code == 200
    assert node.send(node.report(new)).status_code == 200
    kept = report_bodies.references(bytes(_stored(centre, node.agent_id)[-1].body))
    now = datetime.now(timezone.utc) + timedelta(days=399)  # the cut-off: a day ago
    long_ago = datetime.now(timezone.utc) - timedelta(days=100)
    with write_tx(centre.engine) as conn:  # the first two reports, and the piece only they use, are old
        conn.execute(
            update(reports)
            .where(reports.c.agent_id == node.agent_id, reports.c.chain_index <= 2)
            .values(received_at=long_ago)
        )
        conn.execute(
            update(evidence_blobs)
            .where(evidence_blobs.c.agent_id == node.agent_id, evidence_blobs.c.digest.not_in(kept))
            .values(last_used=long_ago)
        )
        pruned = retention_run(conn, Retention(), now)
    assert (pruned.reports, pruned.evidence_pieces) == (2, 1)
    assert set(_pieces(centre, node.agent_id)) == kept
    with read_tx(centre.engine) as conn:
        assert conn.execute(select(func.count()).select_from(reports)).scalar_one() == 1
    checked = verify_ledger(centre.engine, retention=Retention(), now=now)
    assert (checked.checked, checked.problems) == (1, [])
