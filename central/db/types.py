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


class _PackedText(TypeDecorator[str]):
    """Text of one known form stored as the bytes it stands for (``PACKED`` of them); any other text as its
    UTF-8 bytes, refused when exactly ``PACKED`` bytes long, which would read back as the packed form.
    PostgreSQL's column is ``bytea``; SQLite's stays the ``VARCHAR`` it was, which keeps the bytes a
    program stores as they are (a BLOB value), so its migration rewrites values, not the table."""

    PACKED = 0
    WHAT = ""
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(LargeBinary())
        return dialect.type_descriptor(self.impl_instance)

    def pack(self, value: str) -> Optional[bytes]:
        """The bytes ``value`` stands for, or None when it is not of the form."""
        raise NotImplementedError

    def unpack(self, data: bytes) -> str:
        """The text of ``PACKED`` stored bytes."""
        raise NotImplementedError

    def process_bind_param(self, value: Optional[str], dialect: Dialect) -> Optional[bytes]:
        if value is None:
            return None
        packed = self.pack(value)
        if packed is not None:
            return packed
        data = value.encode("utf-8")
        if len(data) == self.PACKED:
            raise ValueError(f"not {self.WHAT} and {self.PACKED} bytes long, which would read back as one: {value!r}")
        return data

    def process_result_value(self, value: Optional[Any], dialect: Dialect) -> Optional[str]:
        if value is None or isinstance(value, str):  # text: a row of SQLite not yet rewritten
            return value
        data = bytes(value)  # PostgreSQL's driver returns a memoryview
        return self.unpack(data) if len(data) == self.PACKED else data.decode("utf-8")


class HexDigest(_PackedText):
    """A SHA-256 in lowercase hex, stored as its 32 bytes (half the room, in the row and in an index);
    lossless for any string (:class:`_PackedText`).  Readers and writers see the hex."""

    impl = String(64)
    PACKED = 32
    WHAT = "a SHA-256 in hex"
    cache_ok = True

    def pack(self, value: str) -> Optional[bytes]:
        return bytes.fromhex(value) if _HEX64.fullmatch(value) else None

    def unpack(self, data: bytes) -> str:
        return data.hex()


class Signature(_PackedText):
    """An Ed25519 signature as ``ed25519 <base64>``, stored as its 64 bytes (96 characters otherwise);
    lossless for any string (:class:`_PackedText`): the entry hash commits to the text as received, so it
    must come back the same."""

    impl = String(128)
    PACKED = 64
    WHAT = "a signature in base64"
    cache_ok = True

    def pack(self, value: str) -> Optional[bytes]:
        return base64.b64decode(value[8:]) if _SIG64.fullmatch(value) else None

    def unpack(self, data: bytes) -> str:
        return "ed25519 " + base64.b64encode(data).decode("ascii")


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
