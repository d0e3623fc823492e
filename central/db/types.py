"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from sqlalchemy import DateTime, LargeBinary, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out (SQLite keeps no zone; PostgreSQL's timestamptz does)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store times with a zone")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or general is None:
            return general

        def process(value: Any) -> Optional[datetime]:
            # SQLite's naive UTC text read aware in one step: what parsing it, then process_result_value,
            # does in five times the time (a list of 10,000 nodes has 30,000 of these)
            if value is None:
                return None
            if isinstance(value, str):
                try:
                    return datetime.fromisoformat(value + "+00:00")
                except ValueError:  # a zone of its own or another form: the general way
                    pass
            result: Optional[datetime] = general(value)
            return result

        return process

    def process_result_value(self, value: Optional[Any], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is timezone.utc:  # PostgreSQL's, from a session in UTC (central/db/engine.py)
            return value
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


_HEX64 = re.compile(r"[0-9a-f]{64}")
_SIG64 = re.compile(r"ed25519 [A-Za-z0-9+/]{85}[AQgw]==")
"""A signature as evidence/signing.py writes it: ``ed25519`` and the canonical base64 of 64 bytes (86
characters, the last holding 2 bits, the rest zero, and '==')."""
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class HexDigest(TypeDecorator[str]):
    """A SHA-256 in lowercase hex, stored as its 32 bytes (half the room, in the row and in an index).

    Lossless for any string: one that is not 64 lowercase hex digits is stored as its UTF-8 bytes,
    which are never exactly 32 bytes long (such a string is refused).  Readers and writers see the hex.
    PostgreSQL's column is ``bytea``; SQLite's stays the ``VARCHAR`` it was, which keeps the bytes a
    program stores as they are (a BLOB value), so its migration rewrites values, not the table."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(LargeBinary())
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Optional[str], dialect: Dialect) -> Optional[bytes]:
        if value is None:
            return None
        if _HEX64.fullmatch(value):
            return bytes.fromhex(value)
        data = value.encode("utf-8")
        if len(data) == 32:
            raise ValueError(f"not a SHA-256 in hex and 32 bytes long, which would read back as one: {value!r}")
        return data

    def process_result_value(self, value: Optional[Any], dialect: Dialect) -> Optional[str]:
        if value is None or isinstance(value, str):  # text: a row of SQLite not yet rewritten
            return value
        data = bytes(value)  # PostgreSQL's driver returns a memoryview
        return data.hex() if len(data) == 32 else data.decode("utf-8")


class Signature(TypeDecorator[str]):
    """An Ed25519 signature in base64, stored as its 64 bytes (88 characters otherwise).

    Lossless for any string: one that is not the canonical base64 of 64 bytes is stored as its UTF-8
    bytes, which are never exactly 64 bytes long (such a string is refused); the entry hash commits to
    the text as received, so it must come back the same.  Columns as for :class:`HexDigest`."""

    impl = String(128)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(LargeBinary())
        return dialect.type_descriptor(String(128))

    def process_bind_param(self, value: Optional[str], dialect: Dialect) -> Optional[bytes]:
        if value is None:
            return None
        if _SIG64.fullmatch(value):
            return base64.b64decode(value[8:])
        data = value.encode("utf-8")
        if len(data) == 64:
            raise ValueError(f"not a signature in base64 and 64 bytes long, which would read back as one: {value!r}")
        return data

    def process_result_value(self, value: Optional[Any], dialect: Dialect) -> Optional[str]:
        if value is None or isinstance(value, str):
            return value
        data = bytes(value)
        return "ed25519 " + base64.b64encode(data).decode("ascii") if len(data) == 64 else data.decode("utf-8")


class LedgerTime(UTCDateTime):
    """An aware UTC time; on SQLite stored as microseconds since 1970 (8 bytes instead of 26 characters
    of text, in the row and in an index) in the column declared ``DATETIME`` as before (whose numeric
    affinity keeps an integer as it is); on PostgreSQL a ``timestamptz`` like :class:`UTCDateTime`.
    For the ledger's own times, compared in SQL only with bound times."""

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: Optional[datetime]) -> Optional[int]:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime: store times with a zone")
            return (value - _EPOCH) // _MICROSECOND

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        text = super().result_processor(dialect, coltype)

        def process(value: Any) -> Optional[datetime]:
            if isinstance(value, int):
                return _EPOCH + _MICROSECOND * value
            return None if value is None else text(value)  # text: a row not yet rewritten

        return process
