"""Migration 0015 on SQLite and PostgreSQL: the tsk2 body format (central/db/report_bodies.py) has a
revision of its own, so a centre that cannot read it refuses the database; its downgrade puts back
what that centre reads (bodies whole, pieces compressed without the preset dictionary), and
``verify`` stays intact both ways."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, List

from fastapi.testclient import TestClient
from sqlalchemy import select

from central.db import migrate, report_bodies
from central.db.engine import read_tx
from central.db.schema import evidence_blobs, reports
from central.ingest.ledger import body_hash
from central.ingest.ledger_check import verify_store
from central.runtime.service import Centre
from tests.central.conftest import Node, cli_env, evidence_record, run_cli

RECORDS = [
    evidence_record(
        "ports", {"sockets": [{"protocol": "tcp", "address": "0.0.0.0", "port": 22, "exposure": "remote"}]}
    ),
    evidence_record("time", {"synchronised": True, "offset_s": 0.000123, "daemons": []}),
]


def _bodies(centre: Centre) -> List[Any]:
    with read_tx(centre.engine) as conn:
        return list(conn.execute(select(reports.c.body, reports.c.body_sha256).order_by(reports.c.id)).all())


def _pieces(centre: Centre) -> List[bytes]:
    with read_tx(centre.engine) as conn:
        return [bytes(d) for d in conn.execute(select(evidence_blobs.c.data)).scalars()]


def test_the_downgrade_leaves_what_an_earlier_centre_reads(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path, database_url: str
) -> None:
    for _ in range(3):
        assert node.send(node.report(*RECORDS)).status_code == 200
    assert all(bytes(b).startswith(report_bodies.MAGIC2) for b, _ in _bodies(centre))
    assert any(data[1] & 0x20 for data in _pieces(centre))  # packed with the preset dictionary

    env = cli_env(tmp_path, database_url)
    unknown, lossy, back = run_cli(env, ["db", "downgrade", "0099"], ["db", "downgrade", "0010"], ["db", "current"])
    assert unknown.returncode == 2 and "no schema revision 0099 to go back to" in unknown.stderr
    assert "0014, 0015" in unknown.stderr  # the revisions it can go back to, not every one it knows
    assert lossy.returncode == 2 and "will not go back to revision 0010" in lossy.stderr
    assert back.stdout.strip() == f"schema at revision {migrate.head()} (newest {migrate.head()})"
    (back,) = run_cli(env, ["db", "downgrade", "0014"])
    assert back.returncode == 0 and back.stdout.strip() == "schema at revision 0014", back.stderr
    stored = _bodies(centre)
    assert len(stored) == 3
    with read_tx(centre.engine) as conn:  # read as the version before 0015 read: tsk1, plain zlib pieces
        rows = conn.execute(select(evidence_blobs.c.digest, evidence_blobs.c.data)).all()
    plain = {bytes(d): zlib.decompress(bytes(data)) for d, data in rows}
    for body, sha in stored:
        assert bytes(body).startswith(report_bodies.MAGIC) and body_hash(report_bodies.join(bytes(body), plain)) == sha
    assert verify_store(centre.engine) == (1, [])
    (again,) = run_cli(env, ["db", "downgrade", "0014"])  # already there: nothing to do, said so
    assert again.returncode == 0 and again.stdout.strip() == "schema at revision 0014", again.stderr

    assert migrate.upgrade(centre.engine) == migrate.head()
    assert node.send(node.report(*RECORDS)).status_code == 200  # stored as tsk2 again, beside the whole ones
    assert bytes(_bodies(centre)[-1][0]).startswith(report_bodies.MAGIC2)
    assert verify_store(centre.engine) == (1, [])
