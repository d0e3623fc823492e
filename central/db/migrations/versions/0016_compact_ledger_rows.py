"""The ledger's rows stored compactly: hashes and signatures as bytes, and on SQLite times as integers

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 19:40:00.000000

Each report's row held its three SHA-256 hashes (body, previous and own entry) as 64 hex characters,
its signature as 88 base64 characters and, on SQLite, its two times as 26 characters of text: about
250 bytes of a row of about 550, and 26 more in the index over ``received_at``. Since this revision
they are stored as bytes (32 per hash, 64 for the signature) and, on SQLite, as microseconds since
1970 (central/db/types.py); the code reads and writes the same hex, base64 and times as before, and
what the chain commits to does not change. A value that is not a lowercase SHA-256 in hex, or not
the canonical base64 of 64 bytes, is stored as its text, so the conversion is lossless.

On PostgreSQL each column is converted in place (``ALTER TABLE ... TYPE bytea USING ...``: the table
is rewritten, under a lock that holds every replica's ingest until it ends). On SQLite the columns
keep their declared types, which store the bytes and integers a program writes as they are; the
rows are rewritten in one statement.

The unique indexes over each node's report ids and sequence numbers (about 75 and 45 bytes a report)
give way to an index over the ids' first 7 characters (about 20), through which ingest refuses a
report id a node used before and the export finds the reports its findings cite; ingest finds a
report sent again by its sequence number among the node's last entries (by the chain's index), and
stores no sequence number that is not after the node's last. (On SQLite the table is rebuilt once
for this.) The downgrade puts the text and the unique indexes back, and refuses when a node has
since stored one report id or sequence number twice.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Optional

import sqlalchemy as sa
from alembic import op

from central.db.migrate import CannotGoBack

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_REPORT_KEY = 7
"""central/db/schema.py's REPORT_KEY when this revision was made (a migration keeps its own copy)."""
_HASHES = ("body_sha256", "prev_hash", "entry_hash", "erased_sha256")
_TIMES = ("collected_at", "received_at")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SIG64 = re.compile(r"ed25519 [A-Za-z0-9+/]{85}[AQgw]==")
"""A signature as evidence/signing.py writes it: ``ed25519`` and the canonical base64 of 64 bytes (86
characters, the last holding 2 bits, the rest zero, and '==')."""
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_PG_HEX_IN = "CASE WHEN {c} ~ '^[0-9a-f]{{64}}$' THEN decode({c}, 'hex') ELSE convert_to({c}, 'UTF8') END"
_PG_SIG_IN = (
    "CASE WHEN {c} ~ '^ed25519 [A-Za-z0-9+/]{{85}}[AQgw]==$' THEN decode(substr({c}, 9), 'base64') "
    "ELSE convert_to({c}, 'UTF8') END"
)
_PG_HEX_OUT = "CASE WHEN length({c}) = 32 THEN encode({c}, 'hex') ELSE convert_from({c}, 'UTF8') END"
_PG_SIG_OUT = (
    "CASE WHEN length({c}) = 64 THEN 'ed25519 ' || translate(encode({c}, 'base64'), E'\\n', '') "
    "ELSE convert_from({c}, 'UTF8') END"
)


def _hex_in(value: Optional[str]) -> Optional[bytes]:
    if value is None:
        return None
    return bytes.fromhex(value) if _HEX64.fullmatch(value) else value.encode("utf-8")


def _sig_in(value: str) -> bytes:
    return base64.b64decode(value[8:]) if _SIG64.fullmatch(value) else value.encode("utf-8")


def _time_in(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    moment = datetime.fromisoformat(value)
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _hex_out(value: Optional[bytes]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    return bytes(value).hex() if len(value) == 32 else bytes(value).decode("utf-8")


def _sig_out(value: Any) -> str:
    if isinstance(value, str):
        return value
    return (
        "ed25519 " + base64.b64encode(bytes(value)).decode("ascii")
        if len(value) == 64
        else bytes(value).decode("utf-8")
    )


def _time_out(value: Any) -> Any:
    if not isinstance(value, int):
        return value
    return (_EPOCH + timedelta(microseconds=value)).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_rows(convert: Dict[str, Callable[[Any], Any]]) -> None:
    """Rewrite every row's values of ``convert``'s columns on SQLite: one UPDATE, each value passed through
    its function registered with SQLite (a third of the time of reading the rows and writing them back)."""
    conn = op.get_bind()
    raw = conn.connection.dbapi_connection
    assert raw is not None
    for name, fn in convert.items():
        raw.create_function(f"tillsyn_0016_{name}", 1, fn, deterministic=True)
    table = sa.table("reports", *(sa.column(name) for name in convert))
    conn.execute(
        sa.update(table).values({name: getattr(sa.func, f"tillsyn_0016_{name}")(table.c[name]) for name in convert})
    )


def _refuse_ambiguous() -> None:
    """Stop, changing nothing, if a row holds a text the new columns cannot keep apart from bytes: a hash
    column's text of exactly 32 bytes, a signature's of exactly 64 (no centre writes such a value; a row
    changed by hand could hold one, and would read back as something else)."""
    conn = op.get_bind()
    size = "octet_length({c})" if conn.dialect.name == "postgresql" else "length(CAST({c} AS BLOB))"
    odd = " OR ".join(f"{size.format(c=name)} = {32 if name in _HASHES else 64}" for name in (*_HASHES, "signature"))
    row = conn.execute(sa.text(f"SELECT agent_id, chain_index FROM reports WHERE {odd} LIMIT 1")).first()  # noqa: S608
    if row is not None:
        raise RuntimeError(
            f"entry {row[1]} of node {row[0]} holds a hash or signature that is not one (32 or 64 bytes of "
            "text), which this revision could not store apart from a real one: see tillsyn-central verify; "
            "nothing was changed"
        )


def upgrade() -> None:
    _refuse_ambiguous()
    if op.get_bind().dialect.name == "postgresql":  # one statement: the table is rewritten once
        changes = [f"ALTER COLUMN {name} TYPE bytea USING {_PG_HEX_IN.format(c=name)}" for name in _HASHES]
        changes.append(f"ALTER COLUMN signature TYPE bytea USING {_PG_SIG_IN.format(c='signature')}")
        op.execute("ALTER TABLE reports " + ", ".join(changes))
    else:
        convert: Dict[str, Callable[[Any], Any]] = {name: _hex_in for name in _HASHES}
        convert.update({"signature": _sig_in, **{name: _time_in for name in _TIMES}})
        _sqlite_rows(convert)
    with op.batch_alter_table("reports") as batch:  # SQLite: the table is rebuilt once, without them
        batch.drop_constraint("uq_reports_agent_report", type_="unique")
        batch.drop_constraint("uq_reports_agent_seq", type_="unique")
    op.create_index("ix_reports_report_key", "reports", [sa.text(f"substr(report_id, 1, {_REPORT_KEY})")])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE reports")  # the planner's statistics for the new index's expression


def downgrade() -> None:
    conn = op.get_bind()
    for column, what in (("report_id", "report id"), ("seq", "sequence number")):
        twice: Optional[Any] = conn.execute(
            sa.select(sa.column("agent_id"), sa.column(column))
            .select_from(sa.table("reports"))
            .group_by(sa.column("agent_id"), sa.column(column))
            .having(sa.func.count() > 1)
            .limit(1)
        ).first()
        if twice is not None:
            raise CannotGoBack(
                f"node {twice[0]} has {what} {twice[1]} in more than one stored report, which the unique "
                "index of the revision before refuses; nothing was changed"
            )
    op.drop_index("ix_reports_report_key", "reports")
    with op.batch_alter_table("reports") as batch:
        batch.create_unique_constraint("uq_reports_agent_report", ["agent_id", "report_id"])
        batch.create_unique_constraint("uq_reports_agent_seq", ["agent_id", "seq"])
    if conn.dialect.name == "postgresql":
        changes = [f"ALTER COLUMN {name} TYPE varchar(64) USING {_PG_HEX_OUT.format(c=name)}" for name in _HASHES]
        changes.append(f"ALTER COLUMN signature TYPE varchar(128) USING {_PG_SIG_OUT.format(c='signature')}")
        op.execute("ALTER TABLE reports " + ", ".join(changes))
        return
    convert: Dict[str, Callable[[Any], Any]] = {name: _hex_out for name in _HASHES}
    convert.update({"signature": _sig_out, **{name: _time_out for name in _TIMES}})
    _sqlite_rows(convert)
