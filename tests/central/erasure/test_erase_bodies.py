"""Erasure on report bodies stored as tsk3 skeletons (central/db/report_bodies.py): every body,
scrubbed or unchanged, ends compressed against a dictionary made of scrubbed bodies only, each tsk3
prefix names exactly one piece of the node, and the chain verifies."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import List, Tuple

from fastapi.testclient import TestClient
from sqlalchemy import select

from central.db import report_bodies
from central.db.engine import read_tx, write_tx
from central.db.schema import reports
from central.erasure.erase import erase
from central.ingest.ledger import body_hash
from central.ingest.ledger_check import verify_store
from central.runtime.service import Centre
from tests.central.conftest import Node, evidence_record
from tests.central.db.helpers import stored_pieces

ANNA = {"users": [{"name": "anna", "home": "/home/anna", "uid": 1000}], "count": 1}
PORTS = {"sockets": [{"protocol": "tcp", "address": "0.0.0.0", "port": 22, "exposure": "remote"}] * 4}


def _bodies(centre: Centre, agent_id: str) -> List[Tuple[bytes, str, str]]:
    with read_tx(centre.engine) as conn:
        rows = conn.execute(
            select(reports.c.body, reports.c.body_sha256, reports.c.erased_sha256)
            .where(reports.c.agent_id == agent_id)
            .order_by(reports.c.chain_index)
        ).all()
    return [(bytes(b), sha, erased) for b, sha, erased in rows]


def test_erasure_rewrites_tsk3_bodies_against_scrubbed_dictionaries_only(
    client: TestClient, centre: Centre, node: Node
) -> None:
    named = evidence_record("accounts", ANNA)
    for _ in range(2):  # the dictionary is the first report's parts: it holds anna's account
        assert node.send(node.report(named, evidence_record("ports", PORTS))).status_code == 200
    plain = evidence_record("ports", PORTS)
    assert node.send(node.report(plain)).status_code == 200  # no personal data: unchanged by the erasure
    before = _bodies(centre, node.agent_id)
    assert all(b.startswith(report_bodies.MAGIC3) for b, _, _ in before)
    assert len({b[5:13] for b, _, _ in before}) == 1  # all three against that dictionary
    assert any(b"anna" in p for p in stored_pieces(centre, node.agent_id).values())

    with write_tx(centre.engine) as conn:
        done = erase(conn, node.agent_id, "GDPR-7", "test", datetime.now(timezone.utc), "test")
    assert done.reports == 2
    after = _bodies(centre, node.agent_id)
    pieces = stored_pieces(centre, node.agent_id)
    assert not any(b"anna" in p for p in pieces.values())  # the unchanged body's old dictionary went too
    assert all(b.startswith(report_bodies.MAGIC3) for b, _, _ in after) and after[2][0] != before[2][0]
    for body, _, _ in after:  # each prefix names one piece of the node, the dictionary the body reads with
        assert len([d for d in pieces if d[:8] == body[5:13]]) == 1
    with read_tx(centre.engine) as conn:
        read = report_bodies.Bodies(conn)
        assert [body_hash(read.raw(node.agent_id, b)) for b, _, _ in after] == [e or s for _, s, e in after]
        assert set().union(*(read.references(node.agent_id, b) for b, _, _ in after)) == set(pieces)
    assert after[2][1] == before[2][1] and after[2][2] is None
    assert verify_store(centre.engine) == (1, [])
    # the node's next report is not compressed against a dictionary erasure deleted
    assert node.send(node.report(plain)).status_code == 200
    assert verify_store(centre.engine) == (1, [])
