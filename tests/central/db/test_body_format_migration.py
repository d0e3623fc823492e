"""Migrations 0015 and 0017 on SQLite and PostgreSQL: the tsk2 and tsk3 body formats
(central/db/report_bodies.py) have a revision each, so a centre that cannot read them refuses the
database; their downgrades put back what that centre reads (0017: tsk2 skeletons naming their
dictionary whole; 0015: tsk1 skeletons, pieces compressed without the preset dictionary), and
``verify`` stays intact both ways."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, List

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from central.db import migrate, report_bodies
from central.db.engine import read_tx, write_tx
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
    assert all(bytes(b).startswith(report_bodies.MAGIC3) for b, _ in _bodies(centre))
    assert any(data[1] & 0x20 for data in _pieces(centre))  # packed with the preset dictionary

    env = cli_env(tmp_path, database_url)
    unknown, lossy, back = run_cli(env, ["db", "downgrade", "0099"], ["db", "downgrade", "0010"], ["db", "current"])
    assert unknown.returncode == 2 and "no schema revision 0099 to go back to" in unknown.stderr
    assert "0014, 0015, 0016, 0017" in unknown.stderr  # the revisions it can go back to, not every one it knows
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
    assert node.send(node.report(*RECORDS)).status_code == 200  # stored as tsk3 again, beside the tsk1 ones
    assert bytes(_bodies(centre)[-1][0]).startswith(report_bodies.MAGIC3)
    assert verify_store(centre.engine) == (1, [])


def test_the_0017_downgrade_names_each_dictionary_whole_and_reads_back_the_same_bytes(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path, database_url: str
) -> None:
    for _ in range(3):
        assert node.send(node.report(*RECORDS)).status_code == 200
    with read_tx(centre.engine) as conn:
        bodies = report_bodies.Bodies(conn)
        before = [(bytes(b), bodies.raw(node.agent_id, b)) for b, _ in _bodies(centre)]
        pieces = {bytes(d) for d in conn.execute(select(evidence_blobs.c.digest)).scalars()}
    assert all(b.startswith(report_bodies.MAGIC3) for b, _ in before)
    gone = before[2][0][:5] + bytes(8) + before[2][0][13:]  # names a dictionary no piece begins with
    with write_tx(centre.engine) as conn:
        conn.execute(update(reports).where(reports.c.chain_index == 3).values(body=gone))

    (back,) = run_cli(cli_env(tmp_path, database_url), ["db", "downgrade", "0016"])
    assert back.returncode == 0 and back.stdout.strip() == "schema at revision 0016", back.stderr
    after = [bytes(b) for b, _ in _bodies(centre)]
    with read_tx(centre.engine) as conn:
        bodies = report_bodies.Bodies(conn)
        for (old, raw), new in zip(before[:2], after[:2]):
            dictionary = new[5:37]  # the one piece whose SHA-256 begins with the prefix, named whole
            assert new.startswith(report_bodies.MAGIC2) and dictionary[:8] == old[5:13] and dictionary in pieces
            assert new[37:] == old[13:] and bodies.raw(node.agent_id, new) == raw
        assert {bytes(d) for d in conn.execute(select(evidence_blobs.c.digest)).scalars()} == pieces
    assert after[2] == gone  # unreadable to either version: left as it is, and said so
    _, problems = verify_store(centre.engine)
    assert [(p.chain_index, "is not stored (the skeleton's dictionary)" in p.problem) for p in problems] == [(3, True)]

    assert migrate.upgrade(centre.engine) == migrate.head()
    assert node.send(node.report(*RECORDS)).status_code == 200  # tsk3 again, beside the tsk2 ones
    assert bytes(_bodies(centre)[-1][0]).startswith(report_bodies.MAGIC3)
