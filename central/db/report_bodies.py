"""How report bodies are stored: each piece of evidence once per node, the exact signed bytes on demand.

A node sends mostly the same evidence every few minutes; storing each report's body whole stored
the same kilobytes hundreds of times a day.  A body is stored as a *skeleton*: its own bytes with
each evidence record's part after its time and duration (``error``, ``format``, ``gaps``,
``observed``, ``status`` in the canonical form: at least :data:`MIN_PIECE` bytes) cut out and replaced by the SHA-256 of
the cut bytes, compressed.  The cut bytes are kept once per node in
``evidence_blobs`` (compressed), keyed by that SHA-256.  Joining skeleton and pieces gives back the
signed bytes exactly; a body is only stored as a skeleton when the join, done before storing,
reproduces its SHA-256, and stays raw otherwise (as every body stored before migration 0011 is).

Every reader of ``reports.body`` goes through :class:`Bodies` (``verify``, the export, the
evaluator, erasure); what they check is unchanged: the joined bytes against ``body_sha256`` (or
``erased_sha256``) and the signature.  A piece that was changed changes the joined bytes, which no
longer match; a piece that is missing makes the body unreadable (:class:`MissingPiece`), and
``verify`` says so.

A piece records when a stored report last referred to it (``last_used``, moved on at most once a
day): a report received at ``t`` refers only to pieces used at ``t - REFRESH`` or later, so once
retention has deleted every report of a node received before ``cutoff``, the node's pieces last used
before ``cutoff - REFRESH`` belong to no report left (:func:`prune`).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from sqlalchemy import Connection, and_, bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from central.db.schema import evidence_blobs

MAGIC = b"\x00tsk1"
"""A stored body that starts with these bytes is a skeleton.  A raw body is a JSON object, which
never starts with a NUL byte."""
MIN_PIECE = 128
"""Smaller pieces stay in the skeleton: a reference costs 32 bytes and a row."""
REFRESH = timedelta(days=1)
_LITERAL, _PIECE = b"L", b"P"
_ZDICT = (
    b'"collector_version":"1","controls":["M01"],"duration_ms":0.000,"error":null,"format":1,"gaps":[],'
    b'"observed":,"status":"complete"},{"collected_at":"2026-12-07T00:00:00Z","collector":"'
    b'power","disk_encryption","antivirus","backup","updates","accounts","firewall","ports","logging",'
    b'"time","file_integrity","mac","partial","not_present","error",'
    b'{"agent_id":"","agent_version":"","collected_at":"2026-12-07T00:00:00Z","evidence":[{"collected_at":"'
    b'"privacy":{"key_id":"","pseudonymise":true},"report_id":"","seq":,"type":"report","v":1}'
)
"""A preset dictionary for the skeletons' compression (a skeleton is a few hundred bytes, mostly the
same keys): part of the format ``MAGIC`` names, never to be changed."""


class UnreadableBody(Exception):
    """A stored body cannot be turned back into bytes: its skeleton is damaged or a piece is gone."""


class MissingPiece(UnreadableBody):
    """A stored skeleton refers to a piece of evidence that is not stored (deleted or never written)."""


def _compress(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _ZDICT)
    return packer.compress(data) + packer.flush()


def _decompress(data: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15, _ZDICT)
    out = unpacker.decompress(data) + unpacker.flush()
    if not unpacker.eof or unpacker.unused_data:
        raise zlib.error("the compressed stream is cut short or followed by other bytes")
    return out


_EVIDENCE = b'"evidence":[{'
_DURATION = b',"duration_ms":'
_NEXT = b'},{"collected_at":'
_AFTER_EVIDENCE = (b'],"privacy":', b'],"report_id":')
"""The keys that follow ``evidence`` in a canonical report (sorted), the first of them present."""


def _cuts(raw: bytes) -> List[Tuple[int, int]]:
    """Where each evidence record's part after its duration lies in a canonical body: from the
    comma after ``duration_ms``'s number to the record's closing brace.  Found by searching bytes,
    not by parsing: a wrong guess costs only sharing (the pieces join back to ``raw`` whatever the
    cuts), never correctness."""
    begin = raw.find(_EVIDENCE)
    end = max(raw.rfind(marker) for marker in _AFTER_EVIDENCE)
    if begin < 0 or end < begin:
        return []
    cuts: List[Tuple[int, int]] = []
    at = begin
    while True:
        duration = raw.find(_DURATION, at, end)
        if duration < 0:
            return cuts
        start = raw.find(b",", duration + len(_DURATION), end)
        if start < 0:
            return cuts
        stop = raw.find(_NEXT, start, end)
        stop = end - 1 if stop < 0 else stop  # the last record's brace is the one before "]"
        if stop - start >= MIN_PIECE:
            cuts.append((start, stop))
        at = stop + 1


def split(raw: bytes) -> Optional[Tuple[bytes, Dict[bytes, bytes]]]:
    """``(skeleton, {sha256: piece})`` of a report body, or None when it has nothing worth cutting
    out or the skeleton and pieces do not join back to exactly ``raw``."""
    parts: List[bytes] = []
    pieces: Dict[bytes, bytes] = {}
    at = 0
    for start, stop in _cuts(raw):
        piece = raw[start:stop]
        digest = hashlib.sha256(piece).digest()
        parts += [_LITERAL + struct.pack(">I", start - at) + raw[at:start], _PIECE + digest]
        pieces[digest] = piece
        at = stop
    if not pieces:
        return None
    parts.append(_LITERAL + struct.pack(">I", len(raw) - at) + raw[at:])
    skeleton = MAGIC + _compress(b"".join(parts))
    if join(skeleton, pieces) != raw:  # the same bytes, so the same SHA-256 (body_sha256)
        return None
    return skeleton, pieces


def _parts(skeleton: bytes) -> Iterable[Tuple[bytes, bytes]]:
    try:
        data = _decompress(skeleton[len(MAGIC) :])
    except zlib.error as err:
        raise UnreadableBody(f"stored skeleton is damaged: {err}") from err
    at = 0
    while at < len(data):
        tag = data[at : at + 1]
        if tag == _PIECE and at + 33 <= len(data):
            yield tag, data[at + 1 : at + 33]
            at += 33
        elif tag == _LITERAL and at + 5 <= len(data):
            (size,) = struct.unpack(">I", data[at + 1 : at + 5])
            if at + 5 + size > len(data):
                raise UnreadableBody(f"stored skeleton is damaged at byte {at}")
            yield tag, data[at + 5 : at + 5 + size]
            at += 5 + size
        else:
            raise UnreadableBody(f"stored skeleton is damaged at byte {at}")


def references(stored: bytes) -> Set[bytes]:
    """The SHA-256 digests of the pieces a stored body refers to (none for a raw body)."""
    if not stored.startswith(MAGIC):
        return set()
    return {value for tag, value in _parts(stored) if tag == _PIECE}


def join(stored: bytes, pieces: Dict[bytes, bytes]) -> bytes:
    """The body's bytes: ``stored`` itself when raw, else the skeleton with its pieces put back."""
    if not stored.startswith(MAGIC):
        return stored
    return _joined(list(_parts(stored)), pieces)


def _joined(parts: List[Tuple[bytes, bytes]], pieces: Dict[bytes, bytes]) -> bytes:
    out = []
    for tag, value in parts:
        if tag == _LITERAL:
            out.append(value)
        elif value in pieces:
            out.append(pieces[value])
        else:
            raise MissingPiece(f"evidence piece {value.hex()} is not stored")
    return b"".join(out)


_FRESH = select(evidence_blobs.c.digest).where(
    evidence_blobs.c.agent_id == bindparam("agent_key"),
    evidence_blobs.c.digest.in_(bindparam("digests", expanding=True)),
    evidence_blobs.c.last_used >= bindparam("fresh_since"),
)


def _upsert(insert: Any) -> Any:
    statement = insert(evidence_blobs)
    return statement.on_conflict_do_update(
        index_elements=[evidence_blobs.c.agent_id, evidence_blobs.c.digest],
        set_={"last_used": statement.excluded.last_used},
        where=evidence_blobs.c.last_used < statement.excluded.last_used,
    )


_UPSERT = {"sqlite": _upsert(sqlite_insert), "postgresql": _upsert(pg_insert)}


def store(conn: Connection, agent_id: str, raw: bytes, now: datetime) -> bytes:
    """What to put in ``reports.body`` for the signed bytes ``raw`` of a report of ``agent_id``
    received ``now``: a skeleton whose pieces are stored (or used again) in this transaction, or
    ``raw`` itself."""
    cut = split(raw)
    if cut is None:
        return raw
    skeleton, pieces = cut
    digests = sorted(pieces)
    fresh = {
        bytes(d)
        for d in conn.execute(
            _FRESH, {"agent_key": agent_id, "digests": digests, "fresh_since": now - REFRESH}
        ).scalars()
    }
    rows = [
        {"agent_id": agent_id, "digest": d, "data": zlib.compress(pieces[d], 6), "last_used": now}
        for d in digests
        if d not in fresh
    ]
    if rows:
        conn.execute(_UPSERT[conn.dialect.name], rows)
    return skeleton


class Bodies:
    """Reads stored bodies back as the signed bytes, fetching each node's pieces once (a read
    transaction's worth: ``verify`` and the export read a node's chain in order)."""

    def __init__(self, conn: Connection, limit: int = 4096) -> None:
        self.conn = conn
        self.cache: Dict[Tuple[str, bytes], bytes] = {}
        self.limit = limit

    def raw(self, agent_id: str, stored: bytes) -> bytes:
        """The exact bytes ``stored`` (a ``reports.body`` of ``agent_id``) stands for.
        Raises :class:`UnreadableBody` (:class:`MissingPiece` when a piece is gone)."""
        stored = bytes(stored)
        if not stored.startswith(MAGIC):
            return stored
        parts = list(_parts(stored))
        wanted = {value for tag, value in parts if tag == _PIECE}
        missing = [d for d in wanted if (agent_id, d) not in self.cache]
        if missing:
            if len(self.cache) + len(missing) > self.limit:
                self.cache.clear()
            for digest, data in self.conn.execute(
                select(evidence_blobs.c.digest, evidence_blobs.c.data).where(
                    evidence_blobs.c.agent_id == agent_id, evidence_blobs.c.digest.in_(missing)
                )
            ):
                try:
                    self.cache[(agent_id, bytes(digest))] = zlib.decompress(bytes(data))
                except zlib.error as err:
                    raise UnreadableBody(f"evidence piece {bytes(digest).hex()} is damaged: {err}") from err
        return _joined(parts, {d: self.cache[(agent_id, d)] for d in wanted if (agent_id, d) in self.cache})


def body_of(conn: Connection, agent_id: str, stored: bytes) -> bytes:
    """One stored body's bytes (see :class:`Bodies` to read many)."""
    return Bodies(conn).raw(agent_id, stored)


def prune(conn: Connection, agent_id: str, cutoff: datetime) -> int:
    """Delete the node's pieces no report received at ``cutoff`` or later can refer to (retention
    has deleted every report of the node received before ``cutoff``)."""
    gone = conn.execute(
        delete(evidence_blobs).where(
            evidence_blobs.c.agent_id == agent_id, evidence_blobs.c.last_used < cutoff - REFRESH
        )
    )
    return int(gone.rowcount or 0)


def keep_only(conn: Connection, agent_id: str, referenced: Set[bytes]) -> int:
    """Delete every piece of the node no stored body refers to (after erasure rewrote its bodies)."""
    stored = {
        bytes(d)
        for d in conn.execute(select(evidence_blobs.c.digest).where(evidence_blobs.c.agent_id == agent_id)).scalars()
    }
    unused = sorted(stored - referenced)
    for i in range(0, len(unused), 500):
        conn.execute(
            delete(evidence_blobs).where(
                and_(evidence_blobs.c.agent_id == agent_id, evidence_blobs.c.digest.in_(unused[i : i + 500]))
            )
        )
    return len(unused)


__all__ = ["Bodies", "MissingPiece", "UnreadableBody", "body_of", "keep_only", "prune", "references", "split", "store"]
