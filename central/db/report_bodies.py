"""How report bodies are stored: each piece of evidence once per node, the exact signed bytes on demand.

A node sends mostly the same evidence every few minutes; storing each report's body whole stored
the same kilobytes hundreds of times a day.  A body is stored as a *skeleton*: its own bytes with
each evidence record's part after its time and duration (``error``, ``format``, ``gaps``,
``observed``, ``status`` in the canonical form: at least :data:`MIN_PIECE` bytes) cut out and replaced by the SHA-256 of
the cut bytes, compressed.  The cut bytes are kept once per node in
``evidence_blobs`` (compressed), keyed by that SHA-256.  Joining skeleton and pieces gives back the
signed bytes exactly; a body is only stored as a skeleton when the join, done before storing,
reproduces its SHA-256, and stays raw otherwise (as every body stored before migration 0011 is).

Formats, each readable forever: a raw body (a JSON object); ``MAGIC`` (tsk1): the skeleton's
*parts* (literals and references) deflated with the preset dictionary :data:`_ZDICT`; ``MAGIC2``
(tsk2, migration 0015): the SHA-256 of a *dictionary piece* of the node, then the parts deflated with
:data:`_ZDICT` and that piece as preset dictionary (:func:`_zdict`); ``MAGIC3`` (tsk3, written since
migration 0017): the same with only the first :data:`PREFIX` bytes of the dictionary's SHA-256, 24
bytes less in every report.  A dictionary piece is an
ordinary piece whose bytes are the parts of an earlier skeleton of the node and the text of its
smaller pieces, so the references to unchanged pieces and the repeated keys and values cost almost
nothing, and a small record that changed (the time collector's, at every collection) stays in the
skeleton at the cost of what changed instead of being a new piece: a skeleton of about 265 bytes
and no new piece, instead of 870 bytes and a new piece of 410.  Which dictionary a node's next
skeletons use is kept in a small cache in the process (:func:`store`); a skeleton names its
dictionary, so readers need no cache, and a replica or a restart only makes another dictionary.
Pieces are zlib-compressed, since tsk2 with the preset dictionary :data:`_PIECE_ZDICT` (named in
their header by its Adler-32; plain zlib before).

A tsk3 skeleton's dictionary is the node's one piece whose SHA-256 begins with the prefix, found by a
range of ``evidence_blobs``' primary key (node, digest).  :func:`store` keeps that one: it names a
dictionary by its prefix only when no other piece of the node begins with it (by its full SHA-256, as
tsk2, otherwise), and stores whole a body one of whose new pieces would begin as another piece of the
node does, so that no piece comes to share the prefix of a dictionary a skeleton names; every writer
of a node's pieces holds the node's row (ingest, erasure), so the check and the insert are not raced.
A reader that still finds more than one (a store changed outside the centre) does not guess: the body
is unreadable (:class:`UnreadableBody`, which ``verify`` names), never read against another dictionary.

Erasure stores the scrubbed bodies against dictionaries made of scrubbed bodies only (its own cache)
and deletes the rest (:func:`keep_only`): a dictionary holds the text of a report's small records
and of the parts that are not cut out, which may name people.

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
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Set, Tuple

from sqlalchemy import Connection, and_, bindparam, delete, false, select, true, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from central.db.schema import evidence_blobs

MAGIC = b"\x00tsk1"
"""A stored body that starts with these bytes is a skeleton compressed against :data:`_ZDICT` alone
(written until the tsk2 format; read forever).  A raw body is a JSON object, which never starts with
a NUL byte."""
MAGIC2 = b"\x00tsk2"
"""A skeleton compressed against a dictionary piece of its node: ``MAGIC2``, the dictionary's SHA-256
(32 bytes), then the parts deflated with the preset dictionary :func:`_zdict` of the dictionary
(written until migration 0017, and since where a prefix would not name one piece; read forever)."""
MAGIC3 = b"\x00tsk3"
"""As ``MAGIC2``, with the first :data:`PREFIX` bytes of the dictionary's SHA-256 instead of all 32."""
_DIGEST = 32
PREFIX = 8
"""The bytes of its SHA-256 that name a tsk3 skeleton's dictionary: 24 bytes less than tsk2 in every
report (about 6.6 KB per node-day).  :func:`store` keeps each prefix a skeleton names to one piece of
the node whatever the length; the length decides how often that check sends a report to tsk2 or to
a whole body, and how safe a piece written without the check would be.  With 8 bytes two of a
node's ``n`` pieces share them by chance with a probability of about n²/2⁶⁵ (3·10⁻¹⁰ for 100,000
pieces), aiming a piece at a given one takes 2⁶⁴ tries, and only a node that makes two of its own
pieces share them (2³² tries) loses its own compression.  4 bytes would save 1.1 KB more per
node-day, but each new piece would meet one of a node's thousands by chance about once in 10⁶, and
could be aimed at one in 2³² tries."""
_WINDOW = 32768
"""Deflate's window: at most this many bytes of a preset dictionary can be referred to."""
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
same keys): part of the formats ``MAGIC`` and ``MAGIC2`` name, never to be changed."""

_PIECE_ZDICT = (
    b'"gaps":[{"reason":"no UPS: nut server 127.0.0.1:3493: connection refused (nothing listening); apcupsd s'
    b'erver 127.0.0.1:3551: connection refused (nothing listeni"gaps":[{"reason":"cannot read vda (permission'
    b' denied opening /dev/vda even as root (device cgroup or security module))","what":"LUKS headers"}],"obs'
    b'erved":{"lu"gaps":[],"observed":{"clamav":{"clamd":{"address":"unix:/var/run/clamav/clamd.ctl","process'
    b'_running":false,"reason":"unix:/var/run/clamav/clamd.ctl does not ex"gaps":[{"reason":"no backup config'
    b'ured in agent.yaml (collectors.backup.backups is empty)","what":"everything"}],"observed":{},"status":"'
    b'not_present"}"gaps":[{"reason":"no process holds 1 socket: kernel sockets (nfsd, lockd, WireGuard), pro'
    b'cesses in another PID namespace, or the agent lacks CAP_SYS_PTRACE (ne"gaps":[],"observed":{"audit":{"e'
    b'nabled":false,"failure_mode":1,"immutable":false,"installed":true,"lost":0,"pid":0,"reason":null,"rules'
    b'":0,"rules_in_files":0,""gaps":[],"observed":{"allow_groups":null,"allow_users":null,"authentication_me'
    b'thods":"any","ciphers":["chacha20-poly1305@openssh.com","aes128-ctr","aes192-ctr""gaps":[],"observed":{'
    b'"accounts":[{"admin_groups":[],"authorized_keys":{"count":0,"keys":[],"types":[]},"dormant":false,"expi'
    b'red":false,"expires":null,"gid":0,""gaps":[{"reason":"no kernel in /boot or /lib/modules (a container r'
    b'uns its host\'s kernel)","what":"installed kernels"}],"observed":{"held_back":[],"installed_k"gaps":[],'
    b'"observed":{"active":false,"counts":{"closed":0,"open":1,"restricted":0,"unknown":0},"default_denies":f'
    b'alse,"frontends":{"firewalld":{"default_zone":n"gaps":[{"reason":"no baseline yet: the daemon makes one'
    b' at its first run","what":"changes"}],"observed":{"baseline_created":false,"baseline_since":null,"chang'
    b'e"gaps":[{"reason":"not root, or held by no process here: whether it is a remote-service tool is unknow'
    b'n","what":"owner of 1 socket"}],"observed":{"accounts":[],,"error":null,"format":1,"gaps":[],"observed"'
    b':{"daemons":[{"last_sync_at":"2026-12-07T00:00:00Z","leap_status":"normal","name":"chrony","offset_s":0'
    b'.000123,"reason":null,"reference":"192.0.2.1","running":true,"sources":[],"stratum":3,"synchronised":tr'
    b'ue},{"last_sync_at":null,"leap_status":null,"name":"timesyncd","offset_s":null,"reason":"systemd-timesy'
    b'ncd is not running","reference":null,"running":false,"sources":[],"stratum":null,"synchronised":false},'
    b'{"last_sync_at":null,"leap_status":null,"name":"ntpd","offset_s":null,"reason":"ntpd is not running","r'
    b'eference":null,"running":false,"sources":[],"stratum":null,"synchronised":false}],"last_sync_at":"2026-'
    b'12-07T00:00:00Z","leap_status":"normal","offset_abs_s":0.000123,"offset_s":0.000123,"reason":"chrony: c'
    b'hronyd is not running; timesyncd: systemd-timesyncd is not running; ntpd: ntpd is not running","referen'
    b'ce":"192.0.2.1","source":"chrony","stratum":3,"synchronised":true},"status":"complete"}'
)
"""The preset dictionary of the pieces (zlib format: the FDICT flag and this dictionary's Adler-32,
:data:`_PIECE_ADLER`, in the header; pieces written before it are plain zlib and read as such): the
part after ``duration_ms`` of a real ``tillsyn-agent collect --json`` of each collector (its start;
the time collector's record whole, as on a synchronised node, because it is a new piece in nearly
every report).  Part of the format, never to be changed: another dictionary needs its own Adler-32,
and this one kept to read what was written with it."""
_PIECE_ADLER = struct.pack(">I", zlib.adler32(_PIECE_ZDICT))
REMAKE = 512
"""A skeleton compressed against its node's dictionary to more bytes than this makes the report's
own parts the node's new dictionary (see :func:`store`).  Against a dictionary of the same collectors a
skeleton is 250-350 bytes (its dictionary's and the new pieces' SHA-256, the records' times and
durations); against one that shares little (made of a report of fewer collectors) 600-900, as a tsk1
skeleton.  A new dictionary costs one piece of about 1 KB, paid back within a few reports; between
the two, so that the usual spread of sizes does not make one at every report."""
INLINE = 2048
"""A record's part of at most this many bytes whose piece its node's dictionary does not refer to
(it changed since, as the time collector's at every collection) stays in the skeleton, where the
dictionary's copy of the earlier one leaves little to store, instead of becoming a new piece."""
_CACHE_LIMIT = 16384
Dictionaries = Dict[str, Tuple[bytes, bytes, datetime, FrozenSet[bytes]]]
_DICTIONARIES: Dictionaries = {}
"""Per node (``agent_id``), the dictionary its next skeletons are compressed against: its SHA-256,
its bytes, when it was made, the pieces it refers to.  Only a hint: :func:`store` uses it only while
its row is stored and fresh, and every skeleton is checked by joining it back before it is stored.
At most :data:`_CACHE_LIMIT` nodes (about 12 KB each); when it is full, the dictionaries made more
than :data:`REFRESH` ago (nodes that left or stopped reporting) are dropped, at most once an hour,
and a node there is still no room for is compressed against an empty dictionary, as a tsk1
skeleton was."""


class UnreadableBody(Exception):
    """A stored body cannot be turned back into bytes: its skeleton is damaged or a piece is gone."""


class MissingPiece(UnreadableBody):
    """A stored skeleton refers to a piece of evidence that is not stored (deleted or never written)."""


def _compress(data: bytes, zdict: bytes = _ZDICT, level: int = 9, wbits: int = -15) -> bytes:
    """Deflate with the preset dictionary ``zdict`` (raw; zlib's format with ``wbits`` 15).  Its fixed
    codes (``Z_FIXED``) were never shorter: 0 of 2,743 skeletons and 142 pieces of a storage-bench day."""
    packer = zlib.compressobj(level, zlib.DEFLATED, wbits, 9, zlib.Z_DEFAULT_STRATEGY, zdict)
    return packer.compress(data) + packer.flush()


def _decompress(data: bytes, zdict: bytes = _ZDICT, wbits: int = -15) -> bytes:
    unpacker = zlib.decompressobj(wbits, zdict)
    out = unpacker.decompress(data) + unpacker.flush()
    if not unpacker.eof or unpacker.unused_data:
        raise zlib.error("the compressed stream is cut short or followed by other bytes")
    return out


def _zdict(dictionary: bytes) -> bytes:
    """The preset dictionary of a tsk2 skeleton whose dictionary piece is ``dictionary``: :data:`_ZDICT`
    and the piece, their last 32 KB (deflate's window) when longer."""
    return (_ZDICT + dictionary)[-_WINDOW:]


def pack_piece(piece: bytes) -> bytes:
    """A piece as stored in ``evidence_blobs.data``: zlib with the preset dictionary :data:`_PIECE_ZDICT`."""
    return _compress(piece, _PIECE_ZDICT, 9, 15)


def unpack_piece(data: bytes) -> bytes:
    """A piece's bytes from ``evidence_blobs.data``: zlib, with :data:`_PIECE_ZDICT` when its header says so
    (FDICT and that dictionary's Adler-32), plain otherwise (pieces stored before it).  Raises ``zlib.error``."""
    if len(data) >= 6 and data[1] & 0x20:  # FDICT: a preset dictionary, named by its Adler-32
        if data[2:6] != _PIECE_ADLER:
            raise zlib.error(f"compressed with an unknown preset dictionary (Adler-32 {data[2:6].hex()})")
        return _decompress(data, _PIECE_ZDICT, 15)
    return zlib.decompress(data)


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


Found = List[Tuple[int, int, bytes]]


def _found(raw: bytes) -> Found:
    """Where each record's part worth cutting out lies in ``raw``, with its SHA-256."""
    return [(start, stop, hashlib.sha256(raw[start:stop]).digest()) for start, stop in _cuts(raw)]


def _cut(
    raw: bytes, keep: Optional[FrozenSet[bytes]] = None, found: Optional[Found] = None
) -> Optional[Tuple[bytes, Dict[bytes, bytes]]]:
    """The parts of ``raw`` (literals and references, uncompressed) and its pieces, or None when
    nothing is worth cutting out.  With ``keep``, a piece of at most :data:`INLINE` bytes not in it
    stays in the parts.  ``found``: :func:`_found` of ``raw``, when already known."""
    parts: List[bytes] = []
    pieces: Dict[bytes, bytes] = {}
    at = 0
    for start, stop, digest in _found(raw) if found is None else found:
        if keep is not None and digest not in keep and stop - start <= INLINE:
            continue
        parts += [_LITERAL + struct.pack(">I", start - at) + raw[at:start], _PIECE + digest]
        pieces[digest] = raw[start:stop]
        at = stop
    if not pieces and keep is None:
        return None
    parts.append(_LITERAL + struct.pack(">I", len(raw) - at) + raw[at:])
    return b"".join(parts), pieces


def _against(
    raw: bytes, parts: bytes, pieces: Dict[bytes, bytes], dictionary: bytes
) -> Optional[Tuple[bytes, Dict[bytes, bytes]]]:
    """The tsk2 skeleton of ``raw`` compressed against ``dictionary``, with its pieces and the
    dictionary piece; None unless it joins back to exactly ``raw``.  (:func:`store` names the
    dictionary by its prefix instead when that names one piece: the same compressed bytes.)"""
    name = hashlib.sha256(dictionary).digest()
    skeleton = MAGIC2 + name + _compress(parts, _zdict(dictionary), 9)
    pieces = {**pieces, name: dictionary}
    try:
        if join(skeleton, pieces) != raw:  # the same bytes, so the same SHA-256 (body_sha256)
            return None
    except UnreadableBody:
        return None
    return skeleton, pieces


def split(raw: bytes, dictionary: Optional[bytes] = None) -> Optional[Tuple[bytes, Dict[bytes, bytes]]]:
    """``(skeleton, {sha256: piece})`` of a report body, the skeleton compressed against
    ``dictionary`` (the parts of an earlier skeleton of the node; its own parts when None), which is
    one of the pieces; None when it has nothing worth cutting out or the skeleton and pieces do not
    join back to exactly ``raw``."""
    cut = _cut(raw)
    if cut is None:
        return None
    parts, pieces = cut
    return _against(raw, parts, pieces, parts if dictionary is None else dictionary)


def _dictionary_name(stored: bytes) -> Optional[bytes]:
    """How a skeleton names the dictionary piece it is compressed against: its SHA-256 (tsk2) or
    the first :data:`PREFIX` bytes of it (tsk3); None for the other formats."""
    size = _DIGEST if stored.startswith(MAGIC2) else PREFIX if stored.startswith(MAGIC3) else 0
    if not size:
        return None
    if len(stored) < len(MAGIC2) + size:
        raise UnreadableBody("stored skeleton is damaged: cut short")
    return stored[len(MAGIC2) : len(MAGIC2) + size]


def _dictionary(name: bytes, pieces: Mapping[bytes, bytes]) -> bytes:
    """The SHA-256 of the piece ``name`` (a SHA-256, or a tsk3 prefix of one) stands for in
    ``pieces``: :class:`MissingPiece` when none, :class:`UnreadableBody` when several begin with a
    prefix (which of them the skeleton was compressed against is not known: none is guessed)."""
    if len(name) == _DIGEST:
        found = [name] if name in pieces else []
    else:
        found = [digest for digest in pieces if digest[: len(name)] == name]
    if not found:
        shown = name.hex() if len(name) == _DIGEST else f"{name.hex()}…"
        raise MissingPiece(f"evidence piece {shown} is not stored (the skeleton's dictionary)")
    if len(found) > 1:
        raise UnreadableBody(
            f"{len(found)} evidence pieces begin with {name.hex()}, the prefix naming the skeleton's "
            "dictionary: which one it is cannot be told"
        )
    return found[0]


def _data(stored: bytes, dictionary: Optional[bytes] = None) -> bytes:
    """A skeleton's parts, uncompressed: tsk1 alone, tsk2 and tsk3 with the bytes of their dictionary piece."""
    try:
        if dictionary is None:
            return _decompress(stored[len(MAGIC) :])
        named = len(_dictionary_name(stored) or b"")
        return _decompress(stored[len(MAGIC2) + named :], _zdict(dictionary))
    except zlib.error as err:
        raise UnreadableBody(f"stored skeleton is damaged: {err}") from err


def _parts(stored: bytes, dictionary: Optional[bytes] = None) -> List[Tuple[bytes, bytes]]:
    """A skeleton's parts: tsk1 alone, tsk2 and tsk3 with the bytes of their dictionary piece."""
    data = _data(stored, dictionary)
    out: List[Tuple[bytes, bytes]] = []
    at = 0
    while at < len(data):
        tag = data[at : at + 1]
        if tag == _PIECE and at + 1 + _DIGEST <= len(data):
            out.append((tag, data[at + 1 : at + 1 + _DIGEST]))
            at += 1 + _DIGEST
        elif tag == _LITERAL and at + 5 <= len(data):
            (size,) = struct.unpack(">I", data[at + 1 : at + 5])
            if at + 5 + size > len(data):
                raise UnreadableBody(f"stored skeleton is damaged at byte {at}")
            out.append((tag, data[at + 5 : at + 5 + size]))
            at += 5 + size
        else:
            raise UnreadableBody(f"stored skeleton is damaged at byte {at}")
    return out


def _read(stored: bytes, pieces: Mapping[bytes, bytes]) -> Tuple[List[Tuple[bytes, bytes]], Set[bytes]]:
    """A skeleton's parts and the pieces it refers to (its dictionary's included, by its SHA-256)."""
    name = _dictionary_name(stored)
    if name is None:
        parts = _parts(stored)
        return parts, {value for tag, value in parts if tag == _PIECE}
    digest = _dictionary(name, pieces)
    parts = _parts(stored, pieces[digest])
    return parts, {digest} | {value for tag, value in parts if tag == _PIECE}


def _skeleton(stored: bytes) -> bool:
    return stored.startswith((MAGIC, MAGIC2, MAGIC3))


def against_dictionary(stored: bytes) -> bool:
    """Whether a stored body is a skeleton compressed against a dictionary piece (tsk2, tsk3)."""
    return bytes(stored).startswith((MAGIC2, MAGIC3))


def references(stored: bytes, pieces: Mapping[bytes, bytes] = {}) -> Set[bytes]:
    """The SHA-256 digests of the pieces a stored body refers to (none for a raw body); a tsk2 or
    tsk3 skeleton's dictionary piece must be in ``pieces`` (see :meth:`Bodies.references`)."""
    if not _skeleton(stored):
        return set()
    return _read(stored, pieces)[1]


def join(stored: bytes, pieces: Mapping[bytes, bytes]) -> bytes:
    """The body's bytes: ``stored`` itself when raw, else the skeleton with its pieces put back."""
    if not _skeleton(stored):
        return stored
    return _joined(_read(stored, pieces)[0], pieces)


def _joined(parts: List[Tuple[bytes, bytes]], pieces: Mapping[bytes, bytes]) -> bytes:
    out = []
    for tag, value in parts:
        if tag == _LITERAL:
            out.append(value)
        elif value in pieces:
            out.append(pieces[value])
        else:
            raise MissingPiece(f"evidence piece {value.hex()} is not stored")
    return b"".join(out)


_STARTING = select(evidence_blobs.c.digest).where(
    evidence_blobs.c.agent_id == bindparam("agent_key"),
    evidence_blobs.c.digest.between(bindparam("low"), bindparam("high")),
)
"""The node's pieces whose SHA-256 begins with a prefix (:func:`_range`): a range of the primary key."""
_FRESH = union_all(
    select(evidence_blobs.c.digest, true().label("fresh")).where(
        evidence_blobs.c.agent_id == bindparam("agent_key"),
        evidence_blobs.c.digest.in_(bindparam("digests", expanding=True)),
        evidence_blobs.c.last_used >= bindparam("fresh_since"),
    ),
    select(evidence_blobs.c.digest, false()).where(
        evidence_blobs.c.agent_id == bindparam("agent_key"),
        evidence_blobs.c.digest.between(bindparam("low"), bindparam("high")),
    ),
)
"""Which of the pieces asked for are stored and fresh, and (not fresh) every piece of the node whose
SHA-256 begins as the dictionary's: one statement per report."""


def _range(prefix: bytes) -> Dict[str, bytes]:
    """The bounds of the SHA-256 digests that begin with ``prefix`` (the parameters of :data:`_STARTING`)."""
    rest = _DIGEST - len(prefix)
    return {"low": prefix + bytes(rest), "high": prefix + b"\xff" * rest}


def _upsert(insert: Any) -> Any:
    statement = insert(evidence_blobs)
    return statement.on_conflict_do_update(
        index_elements=[evidence_blobs.c.agent_id, evidence_blobs.c.digest],
        set_={"last_used": statement.excluded.last_used},
        where=evidence_blobs.c.last_used < statement.excluded.last_used,
    )


_UPSERT = {"sqlite": _upsert(sqlite_insert), "postgresql": _upsert(pg_insert)}


def store(
    conn: Connection, agent_id: str, raw: bytes, now: datetime, dictionaries: Optional[Dictionaries] = None
) -> bytes:
    """What to put in ``reports.body`` for the signed bytes ``raw`` of a report of ``agent_id``
    received ``now``: a tsk3 skeleton (tsk2 when another of the node's pieces begins as its
    dictionary's SHA-256 does) whose pieces and dictionary piece are stored (or used again) in this
    transaction, or ``raw`` itself (also when one of its new pieces would begin as another of the
    node's pieces does: a tsk3 skeleton may name that one by the prefix).  The caller holds the
    node's row, so no other transaction adds a piece of the node between the check and the insert.

    The dictionary is the node's in ``dictionaries`` (the process's cache when None; erasure passes
    its own, so that scrubbed bodies are compressed only against scrubbed parts) while its row is
    stored and fresh, it is younger than :data:`REFRESH` and the skeleton against it is at most
    :data:`REMAKE` bytes; else the report's own parts, followed by its pieces of at most
    :data:`INLINE` bytes, become the node's new dictionary.  Against it, a record's part the
    dictionary refers to is a reference, a changed one of at most :data:`INLINE` bytes stays in the
    skeleton (the dictionary has its earlier text), a larger one is a new piece."""
    found = _found(raw)
    cut = _cut(raw, found=found)
    if cut is None:
        return raw
    parts, pieces = cut
    cache = _DICTIONARIES if dictionaries is None else dictionaries
    held = cache.get(agent_id)
    if held is None and len(cache) >= _CACHE_LIMIT:
        _forget_older(cache, now)  # nodes that left, or have not reported for a day
    asked_name = held[0] if held else _EMPTY
    asked = sorted(set(pieces) | {asked_name})
    fresh: Set[bytes] = set()
    around: Dict[bytes, Set[bytes]] = {asked_name[:PREFIX]: set()}  # prefix -> the node's pieces beginning so
    values = {"agent_key": agent_id, "digests": asked, "fresh_since": now - REFRESH, **_range(asked_name[:PREFIX])}
    for digest, is_fresh in conn.execute(_FRESH, values):
        (fresh if is_fresh else around[asked_name[:PREFIX]]).add(bytes(digest))
    made = None
    if held is not None and held[0] in fresh and now - held[2] < REFRESH:
        inlined = _cut(raw, held[3], found)
        made = None if inlined is None else _against(raw, *inlined, held[1])
        if made is not None and len(made[0]) > REMAKE:
            made = None
    if made is None and held is None and len(cache) >= _CACHE_LIMIT:
        made = _against(raw, parts, pieces, b"")  # no room to remember another node's dictionary
    elif made is None:  # the report's parts, and the records it may keep in later skeletons
        dictionary = parts + b"".join(p for p in pieces.values() if len(p) <= INLINE)
        made = _against(raw, parts, pieces, dictionary)
        if made is not None:
            cache[agent_id] = (made[0][len(MAGIC2) : len(MAGIC2) + _DIGEST], dictionary, now, frozenset(pieces))
    if made is None:
        return raw
    skeleton, pieces = made
    written = [d for d in sorted(pieces) if d not in fresh]  # new, or stored and used again
    named = _by_prefix(conn, agent_id, skeleton, pieces, written, around)
    if named is None:
        return raw
    rows = [{"agent_id": agent_id, "digest": d, "data": pack_piece(pieces[d]), "last_used": now} for d in written]
    if rows:
        conn.execute(_UPSERT[conn.dialect.name], rows)
    return named


def _by_prefix(
    conn: Connection,
    agent_id: str,
    skeleton: bytes,
    pieces: Mapping[bytes, bytes],
    written: List[bytes],
    around: Dict[bytes, Set[bytes]],
) -> Optional[bytes]:
    """The tsk2 ``skeleton`` as tsk3 when no other piece of the node, stored or of this report,
    begins as its dictionary's SHA-256 does (as it is otherwise); None when a new piece of
    ``written`` would begin as another does (the body is then stored whole).  ``around``: prefix ->
    the node's stored pieces beginning with it, completed here by a range of the primary key for
    the prefixes not in it (the common report writes no piece, and its dictionary's was asked for)."""
    name = skeleton[len(MAGIC2) : len(MAGIC2) + _DIGEST]
    for digest in [*written, name]:
        if digest[:PREFIX] not in around:
            stored = conn.execute(_STARTING, {"agent_key": agent_id, **_range(digest[:PREFIX])}).scalars()
            around[digest[:PREFIX]] = {bytes(d) for d in stored}

    def others(digest: bytes) -> Set[bytes]:
        return {d for d in around[digest[:PREFIX]] | set(pieces) if d[:PREFIX] == digest[:PREFIX]} - {digest}

    if any(d not in around[d[:PREFIX]] and others(d) for d in written):
        return None  # it would share its prefix with another piece, which a tsk3 skeleton may name
    if others(name):
        return skeleton
    return MAGIC3 + name[:PREFIX] + skeleton[len(MAGIC2) + _DIGEST :]


_EMPTY = hashlib.sha256(b"").digest()
"""The dictionary of a node the cache has no room for (see :func:`store`)."""


_LOOKED = {"at": datetime.min.replace(tzinfo=timezone.utc)}
"""When :func:`_forget_older` last went through a full cache: at most once an hour."""


def _forget_older(cache: Dictionaries, now: datetime) -> None:
    """Drop the dictionaries made before ``now - REFRESH`` (of nodes that left or stopped reporting,
    which no store will use again), when the last look was an hour ago or more."""
    if now - _LOOKED["at"] < timedelta(hours=1):
        return
    _LOOKED["at"] = now
    for agent_id, held in list(cache.items()):
        if held[2] < now - REFRESH:
            cache.pop(agent_id, None)


def forget(agent_id: str) -> None:
    """Drop the node's dictionary from this process's cache (erasure deletes the pieces it was made of)."""
    _DICTIONARIES.pop(agent_id, None)


_PIECES_STARTING = select(evidence_blobs.c.digest, evidence_blobs.c.data).where(
    evidence_blobs.c.agent_id == bindparam("agent_key"),
    evidence_blobs.c.digest.between(bindparam("low"), bindparam("high")),
)


class Bodies:
    """Reads stored bodies back as the signed bytes, fetching each node's pieces once (a read
    transaction's worth: ``verify`` and the export read a node's chain in order)."""

    def __init__(self, conn: Connection, limit: int = 4096) -> None:
        self.conn = conn
        self.cache: Dict[Tuple[str, bytes], bytes] = {}
        self.named: Dict[Tuple[str, bytes], bytes] = {}
        """(node, tsk3 prefix) -> the SHA-256 of the one piece of the node it was found to name."""
        self.limit = limit

    def _room(self, more: int) -> bool:
        """Whether ``more`` pieces fit in the cache; when they do not, it is emptied."""
        if len(self.cache) + more <= self.limit:
            return True
        self.cache.clear()
        self.named.clear()
        return False

    def _unpacked(self, digest: bytes, data: bytes) -> bytes:
        try:
            return unpack_piece(data)
        except zlib.error as err:
            raise UnreadableBody(f"evidence piece {digest.hex()} is damaged: {err}") from err

    def _fetch(self, agent_id: str, wanted: Iterable[bytes]) -> Dict[bytes, bytes]:
        """The pieces of ``wanted`` that are stored, from the cache or in one query."""
        wanted = list(wanted)
        missing = [d for d in wanted if (agent_id, d) not in self.cache]
        if missing:
            if not self._room(len(missing)):
                missing = wanted  # fetch every piece of this body again, not only the missing ones
            for digest, data in self.conn.execute(
                select(evidence_blobs.c.digest, evidence_blobs.c.data).where(
                    evidence_blobs.c.agent_id == agent_id, evidence_blobs.c.digest.in_(missing)
                )
            ):
                self.cache[(agent_id, bytes(digest))] = self._unpacked(bytes(digest), bytes(data))
        return {d: self.cache[(agent_id, d)] for d in wanted if (agent_id, d) in self.cache}

    def _dictionaries(self, agent_id: str, name: bytes) -> Dict[bytes, bytes]:
        """The pieces a skeleton's dictionary name can stand for: the piece of that SHA-256 (tsk2),
        or every piece of the node whose SHA-256 begins with that prefix (tsk3: a range of the
        primary key; the one found is cached, several make the body unreadable in :func:`_dictionary`)."""
        if len(name) == _DIGEST:
            return self._fetch(agent_id, [name])
        digest = self.named.get((agent_id, name))
        if digest is not None and (agent_id, digest) in self.cache:
            return {digest: self.cache[(agent_id, digest)]}
        found = {
            bytes(d): bytes(data)
            for d, data in self.conn.execute(_PIECES_STARTING, {"agent_key": agent_id, **_range(name)})
        }
        pieces = {d: self._unpacked(d, data) for d, data in found.items()}
        if len(pieces) == 1:
            ((digest, piece),) = pieces.items()
            self._room(1)
            self.cache[(agent_id, digest)] = piece
            self.named[(agent_id, name)] = digest
        return pieces

    def _read(self, agent_id: str, stored: bytes) -> Tuple[List[Tuple[bytes, bytes]], Dict[bytes, bytes]]:
        name = _dictionary_name(stored)
        dictionary = self._dictionaries(agent_id, name) if name is not None else {}  # shared by many reports
        parts, wanted = _read(stored, dictionary)
        return parts, self._fetch(agent_id, wanted)

    def raw(self, agent_id: str, stored: bytes) -> bytes:
        """The exact bytes ``stored`` (a ``reports.body`` of ``agent_id``) stands for.
        Raises :class:`UnreadableBody` (:class:`MissingPiece` when a piece is gone)."""
        stored = bytes(stored)
        if not _skeleton(stored):
            return stored
        return _joined(*self._read(agent_id, stored))

    def _named(self, agent_id: str, stored: bytes) -> Tuple[bytes, bytes]:
        """The SHA-256 and bytes of a tsk2 or tsk3 skeleton's dictionary piece."""
        name = _dictionary_name(stored)
        if name is None:
            raise UnreadableBody("the body is not a skeleton compressed against a dictionary")
        pieces = self._dictionaries(agent_id, name)
        digest = _dictionary(name, pieces)
        return digest, pieces[digest]

    def as_tsk1(self, agent_id: str, stored: bytes) -> bytes:
        """A tsk2 or tsk3 skeleton as the tsk1 skeleton of the same parts (what a centre before
        migration 0015 reads: the same pieces, the small records it kept inline as literals), checked
        to read back the same bytes; any other body as it is.  Raises :class:`UnreadableBody`."""
        stored = bytes(stored)
        if not against_dictionary(stored):
            return stored
        old = MAGIC + _compress(_data(stored, self._named(agent_id, stored)[1]))
        if self.raw(agent_id, old) != self.raw(agent_id, stored):
            raise UnreadableBody("the skeleton does not read back the same bytes as tsk1")
        return old

    def as_tsk2(self, agent_id: str, stored: bytes) -> bytes:
        """A tsk3 skeleton as the tsk2 skeleton of the same compressed parts, its dictionary named by
        the full SHA-256 (what a centre before migration 0017 reads), checked to read back the same
        bytes; any other body as it is.  Raises :class:`UnreadableBody`."""
        stored = bytes(stored)
        if not stored.startswith(MAGIC3):
            return stored
        old = MAGIC2 + self._named(agent_id, stored)[0] + stored[len(MAGIC3) + PREFIX :]
        if self.raw(agent_id, old) != self.raw(agent_id, stored):
            raise UnreadableBody("the skeleton does not read back the same bytes as tsk2")
        return old

    def references(self, agent_id: str, stored: bytes) -> Set[bytes]:
        """The pieces a stored body of ``agent_id`` refers to, its dictionary included."""
        stored = bytes(stored)
        if not _skeleton(stored):
            return set()
        name = _dictionary_name(stored)
        return _read(stored, self._dictionaries(agent_id, name) if name is not None else {})[1]


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


__all__ = [
    "Bodies",
    "MissingPiece",
    "UnreadableBody",
    "against_dictionary",
    "body_of",
    "forget",
    "keep_only",
    "pack_piece",
    "prune",
    "references",
    "split",
    "store",
    "unpack_piece",
]
