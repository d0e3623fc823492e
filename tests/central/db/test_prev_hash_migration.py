"""Migration 0018 on SQLite and PostgreSQL: ``reports.prev_hash`` is no longer stored. The upgrade
keeps ``verify`` intact; the downgrade (``tillsyn-central db downgrade 0017``) gives every row back
the value ingest wrote (the hash of the entry before it, of the retention checkpoint, or genesis),
the same bytes each time, and the table as it was."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Tuple

from fastapi.testclient import TestClient
from sqlalchemy import Connection, inspect, select, text, update

from central.db import migrate
from central.db.engine import read_tx, write_tx
from central.db.schema import pending_evaluation, reports
from central.db.types import HexDigest
from central.ingest.ledger import GENESIS, entry_hash
from central.ingest.ledger_check import verify_store
from central.retention.sweep import checkpoints, run
from central.runtime.service import Centre
from tests.central.conftest import Node, cli_env, new_token, run_cli
from tests.central.db.helpers import schema_differences
from tests.central.retention.helpers import SETTINGS

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _stored(conn: Connection) -> Dict[Tuple[str, int], Any]:
    """Each row's prev_hash as stored (raw bytes), by node and chain index (at revision 0017)."""
    rows = conn.execute(text("SELECT agent_id, chain_index, prev_hash FROM reports"))
    return {(agent_id, int(index)): bytes(prev) for agent_id, index, prev in rows}


def _raw(value: str, conn: Connection) -> bytes:
    """A hash as HexDigest (0016) stores it."""
    stored = HexDigest().process_bind_param(value, conn.dialect)
    assert isinstance(stored, bytes)
    return stored


def _the_values_ingest_wrote(conn: Connection, stored: Dict[Tuple[str, int], Any]) -> None:
    """Each value is the only one ingest could have written: entry n's hash is the SHA-256 over it
    (and node, index, body hash, signature), and it is the stored hash of the entry before it, the
    checkpoint's, or genesis."""
    marks = checkpoints(conn)
    rows = conn.execute(
        select(
            reports.c.agent_id, reports.c.chain_index, reports.c.entry_hash, reports.c.body_sha256, reports.c.signature
        )
    ).all()
    hashes = {(r.agent_id, r.chain_index): r.entry_hash for r in rows}
    assert len(rows) == len(stored)
    for r in rows:
        mark = marks.get(r.agent_id)
        if r.chain_index == 1:
            prev = GENESIS
        elif mark is not None and mark.chain_index == r.chain_index - 1:
            prev = mark.entry_hash
        else:
            prev = hashes[r.agent_id, r.chain_index - 1]
        assert stored[r.agent_id, r.chain_index] == _raw(prev, conn), (r.agent_id, r.chain_index)
        assert entry_hash(prev, r.agent_id, r.chain_index, r.body_sha256, r.signature) == r.entry_hash


def _columns(conn: Connection) -> list[str]:
    return [c["name"] for c in inspect(conn).get_columns("reports")]


def _indexes(conn: Connection) -> set[str]:
    """Every index of the table, the expression index too (which SQLite's reflection skips)."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'reports'"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE tablename = 'reports'"
    return set(conn.execute(text(query)).scalars())


def _pending(conn: Connection) -> list[int]:
    return list(conn.execute(select(pending_evaluation.c.report_pk).order_by(pending_evaluation.c.report_pk)).scalars())


def test_prev_hash_derived_and_given_back_by_the_downgrade(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path, database_url: str
) -> None:
    other = Node(client, hostname="db1")
    other.enrol(new_token(centre))
    for n, count in ((node, 5), (other, 3)):
        for _ in range(count):
            assert n.send(n.report()).status_code == 200
    with write_tx(centre.engine) as conn:  # the node's first 2 reports go behind a retention checkpoint
        conn.execute(
            update(reports)
            .where(reports.c.agent_id == node.agent_id, reports.c.chain_index <= 2)
            .values(received_at=NOW - timedelta(days=500))
        )
        assert run(conn, SETTINGS, NOW).reports == 2
        # reports waiting for evaluation (the test client judged them): the rebuilt table keeps their queue
        for key, agent_id in conn.execute(select(reports.c.id, reports.c.agent_id)):
            conn.execute(pending_evaluation.insert().values(report_pk=key, agent_id=agent_id))
    assert verify_store(centre.engine, retention=SETTINGS) == (2, [])
    with read_tx(centre.engine) as conn:
        assert "prev_hash" not in _columns(conn)
        pending = _pending(conn)
        indexes = _indexes(conn)
    assert len(pending) == 6 and "ix_reports_report_key" in indexes

    env = cli_env(tmp_path, database_url)
    unknown, back = run_cli(env, ["db", "downgrade", "0099"], ["db", "downgrade", "0017"])
    assert "it can go back to 0014, 0015, 0016, 0017, 0018" in unknown.stderr, unknown.stderr
    assert back.returncode == 0 and back.stdout.strip() == "schema at revision 0017", back.stderr
    with read_tx(centre.engine) as conn:
        before = _stored(conn)
        _the_values_ingest_wrote(conn, before)
        assert set(before) == {(node.agent_id, i) for i in (3, 4, 5)} | {(other.agent_id, i) for i in (1, 2, 3)}
        if conn.dialect.name == "sqlite":  # as 0017 left the table: the column in its place, not null
            assert _columns(conn).index("prev_hash") == _columns(conn).index("chain_index") + 1
        assert not next(c for c in inspect(conn).get_columns("reports") if c["name"] == "prev_hash")["nullable"]
        assert _pending(conn) == pending
        assert _indexes(conn) == indexes

    assert migrate.upgrade(centre.engine) == "0018"
    assert schema_differences(centre) == []
    with read_tx(centre.engine) as conn:
        assert "prev_hash" not in _columns(conn)
        assert _pending(conn) == pending and _indexes(conn) == indexes
    assert verify_store(centre.engine, retention=SETTINGS) == (2, [])
    for n in (node, other):  # the chain goes on from the derived hashes
        assert n.send(n.report()).status_code == 200
    assert verify_store(centre.engine, retention=SETTINGS) == (2, [])

    assert migrate.downgrade(centre.engine, "0017") == "0017"
    with read_tx(centre.engine) as conn:
        again = _stored(conn)
        _the_values_ingest_wrote(conn, again)
    assert {key: again[key] for key in before} == before  # the same bytes as the first time
    assert len(again) == len(before) + 2
