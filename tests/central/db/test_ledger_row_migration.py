"""Migration 0016 on SQLite and PostgreSQL: the ledger's hashes and signatures are stored as bytes, and on
SQLite its times as integers; the unique index over node and report id gives way to an index over the ids'
first characters.  The code reads the same text and times either way, the downgrade puts back exactly the
text that was there, and ``verify`` stays intact both ways."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from central.db import migrate
from central.db.engine import read_tx, write_tx
from central.db.schema import REPORT_KEY, pending_evaluation, report_key, reports
from central.db.types import HexDigest, Signature
from central.ingest.ledger_check import verify_store
from central.ingest.receive import _BY_ID
from central.runtime.service import Centre
from tests.central.conftest import Node, cli_env, evidence_record, run_cli

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
RECORD = evidence_record("time", {"synchronised": True, "offset_s": 0.000123, "daemons": []})
_COLUMNS = ("signature", "body_sha256", "entry_hash", "collected_at", "received_at")
"""The columns 0016 converted that the code reads (the fourth, prev_hash, is not stored since 0018)."""
SQLITE: Dialect = sqlite.dialect()
POSTGRESQL: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
_RAW = sa.table("reports", sa.column("id"), *(sa.column(name) for name in _COLUMNS))
"""The table as stored, without the schema's types: what the database holds."""
_PREV = sa.table("reports", sa.column("id"), sa.column("prev_hash"))
"""The column 0018 drops and its downgrade fills again, as stored before 0018."""


def _typed(centre: Centre) -> List[Dict[str, Any]]:
    with read_tx(centre.engine) as conn:
        rows = conn.execute(select(reports.c.id, *(reports.c[n] for n in _COLUMNS)).order_by(reports.c.id))
        return [dict(row._mapping) for row in rows]


def _queued(centre: Centre) -> List[int]:
    with read_tx(centre.engine) as conn:
        return list(
            conn.execute(select(pending_evaluation.c.report_pk).order_by(pending_evaluation.c.report_pk)).scalars()
        )


def _raw(centre: Centre) -> List[Dict[str, Any]]:
    with read_tx(centre.engine) as conn:
        return [dict(row._mapping) for row in conn.execute(select(_RAW).order_by(_RAW.c.id))]


def test_the_ledger_is_stored_compactly_and_the_downgrade_puts_the_text_back(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path, database_url: str
) -> None:
    for _ in range(3):
        assert node.send(node.report(RECORD)).status_code == 200
    typed = _typed(centre)
    on_sqlite = centre.engine.dialect.name == "sqlite"
    for row, raw in zip(typed, _raw(centre)):
        assert row["signature"].startswith("ed25519 ") and len(row["body_sha256"]) == 64
        assert len(bytes(raw["signature"])) == 64
        assert [len(bytes(raw[n])) for n in ("body_sha256", "entry_hash")] == [32, 32]
        if on_sqlite:  # microseconds since 1970
            for name in ("collected_at", "received_at"):
                assert raw[name] == (row[name] - EPOCH) // timedelta(microseconds=1)

    with write_tx(centre.engine) as conn:  # reports still to be judged: the queue refers to them
        conn.execute(delete(pending_evaluation))
        conn.execute(pending_evaluation.insert(), [{"report_pk": r["id"], "agent_id": node.agent_id} for r in typed])
    env = cli_env(tmp_path, database_url)
    (back,) = run_cli(env, ["db", "downgrade", "0015"])
    assert back.returncode == 0 and back.stdout.strip() == "schema at revision 0015", back.stderr
    raw_text = _raw(centre)
    for row, raw in zip(typed, raw_text):  # the text the version before wrote, character for character
        for name in ("signature", "body_sha256", "entry_hash"):
            assert raw[name] == row[name], name
        if on_sqlite:
            assert isinstance(raw["received_at"], str)
    with read_tx(centre.engine) as conn:  # prev_hash (given back by 0018's downgrade) as text again too
        prev = list(conn.execute(select(_PREV.c.prev_hash).order_by(_PREV.c.id)).scalars())
    assert prev == ["0" * 64, *(row["entry_hash"] for row in typed[:-1])]
    assert _typed(centre) == typed  # and the code reads the same either way
    assert verify_store(centre.engine) == (1, [])
    assert _queued(centre) == [r["id"] for r in typed]  # SQLite's rebuild of the table did not empty the queue

    assert migrate.upgrade(centre.engine) == migrate.head()
    assert _typed(centre) == typed
    assert _queued(centre) == [r["id"] for r in typed]
    assert node.send(node.report(RECORD)).status_code == 200
    assert verify_store(centre.engine) == (1, [])


def test_the_downgrade_refuses_a_report_id_stored_twice(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path, database_url: str
) -> None:
    first = node.report(RECORD)
    assert node.send(first).status_code == 200
    assert node.send(node.report(RECORD)).status_code == 200
    with write_tx(centre.engine) as conn:  # not something ingest lets through: written by hand
        conn.execute(update(reports).where(reports.c.chain_index == 2).values(report_id=first["report_id"]))
    (refused,) = run_cli(cli_env(tmp_path, database_url), ["db", "downgrade", "0015"])
    assert refused.returncode == 2
    assert f"has report id {first['report_id']} in more than one stored report" in refused.stderr
    assert "nothing was changed" in refused.stderr
    (current,) = run_cli(cli_env(tmp_path, database_url), ["db", "current"])
    assert current.stdout.strip().startswith(f"schema at revision {migrate.head()}")


@pytest.mark.parametrize(
    "value",
    [
        "0" * 64,
        "ab" * 32,
        "AB" * 32,  # upper case: not what hexdigest() writes, kept as text
        "not a hash",
        "x" * 65,
        "",
    ],
)
def test_a_digest_column_gives_back_any_text_it_was_given(value: str) -> None:
    digest = HexDigest()
    for dialect in (SQLITE, POSTGRESQL):
        stored = digest.process_bind_param(value, dialect)
        assert stored is not None and digest.process_result_value(memoryview(stored), dialect) == value
    assert len(digest.process_bind_param("ab" * 32, SQLITE) or b"") == 32


def test_a_text_that_would_read_back_as_another_is_refused() -> None:
    dialect = SQLITE
    with pytest.raises(ValueError, match="would read back as one"):
        HexDigest().process_bind_param("y" * 32, dialect)
    with pytest.raises(ValueError, match="would read back as one"):
        Signature().process_bind_param("z" * 64, dialect)


@pytest.mark.parametrize(
    "value",
    [
        "ed25519 " + "A" * 86 + "==",
        "ed25519 " + "A" * 85 + "B==",  # not canonical (bits after the last byte): kept as text
        "A" * 86 + "==",  # no scheme
        "ed25519 " + "A" * 84 + "=",
        "rsa something",
    ],
)
def test_a_signature_column_gives_back_any_text_it_was_given(value: str) -> None:
    signature = Signature()
    dialect = POSTGRESQL
    stored = signature.process_bind_param(value, dialect)
    assert stored is not None and signature.process_result_value(memoryview(stored), dialect) == value
    assert (len(stored) == 64) == (value == "ed25519 " + "A" * 86 + "==")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_report_ids_are_looked_up_through_their_index(client: TestClient, centre: Centre, node: Node) -> None:
    """Ingest looks up every new report's id; without the index that is a walk through the node's whole ledger.
    SQLite only: it uses an expression index only for a query with the very same expression (PostgreSQL
    plans each lookup with its values, and matches the expression either way)."""
    report = node.report(RECORD)
    assert node.send(report).status_code == 200
    keys = {"prefix_key": report["report_id"][:REPORT_KEY], "agent_key": node.agent_id}
    cited = select(reports.c.report_id).where(report_key(reports.c.report_id).in_([keys["prefix_key"]]))
    with read_tx(centre.engine) as conn:
        for statement, params in ((_BY_ID, keys), (cited, {})):
            compiled = statement.compile(centre.engine, compile_kwargs={"render_postcompile": True})
            plan = conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.construct_params(params).values())
            ).all()
            assert any("ix_reports_report_key" in str(step) for step in plan), plan
        assert [row.report_id for row in conn.execute(_BY_ID, keys)] == [report["report_id"]]


def test_the_upgrade_refuses_a_value_it_could_not_keep_apart(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path, database_url: str
) -> None:
    assert node.send(node.report(RECORD)).status_code == 200
    env = cli_env(tmp_path, database_url)
    (back,) = run_cli(env, ["db", "downgrade", "0015"])
    assert back.returncode == 0, back.stderr
    with write_tx(centre.engine) as conn:  # a hash changed by hand into 32 characters of text
        conn.execute(update(_RAW).values(entry_hash="x" * 32))
    with pytest.raises(RuntimeError, match=r"entry 1 of node .* holds a hash or signature that is not one"):
        migrate.upgrade(centre.engine)
    (current,) = run_cli(env, ["db", "current"])
    assert current.stdout.strip().startswith("schema at revision 0015"), current.stdout
    assert _raw(centre)[0]["entry_hash"] == "x" * 32  # nothing was changed
