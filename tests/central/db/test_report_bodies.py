"""Report bodies stored as skeletons with each piece of evidence once per node (central/db/report_bodies.py):
the signed bytes come back exactly, ``verify`` and the export prove what they proved, a changed or
missing piece is found, erasure takes the pieces with personal data, retention the unused ones;
on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, List

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update

from central.config import Retention
from central.db import report_bodies
from central.db.engine import read_tx, write_tx
from central.db.schema import evidence_blobs, pending_evaluation, reports
from central.erasure.erase import erase
from central.export.build import build
from central.export.model import Request
from central.export.offline import offline
from central.ingest.ledger import body_hash
from central.ingest.ledger_check import verify_ledger, verify_store
from central.retention.sweep import run as retention_run
from central.runtime.service import Centre
from evidence.model import Evidence
from evidence.wire import Report, canonical
from tests.central.conftest import Node, decode, evidence_record
from tests.central.db.helpers import stored_pieces

ROOT = Path(__file__).resolve().parents[3]
TELNETD = {"name": "telnetd", "exe": "/home/anna/bin/telnetd", "user": "anna", "pid": 4242}
ANNA = {
    "sockets": [{"protocol": "tcp", "address": "127.0.0.1", "port": 2323, "exposure": "loopback", "process": TELNETD}]
}
CHRONY = {"name": "chrony", "running": True, "synchronised": True, "offset_s": 0.000123, "stratum": 3}
TIMESYNCD = {"name": "timesyncd", "running": False, "synchronised": False, "reason": "not running"}


def _stored(centre: Centre, agent_id: str) -> List[Any]:
    with read_tx(centre.engine) as conn:
        return list(
            conn.execute(
                select(reports.c.id, reports.c.body, reports.c.body_sha256, reports.c.erased_sha256)
                .where(reports.c.agent_id == agent_id)
                .order_by(reports.c.chain_index)
            ).all()
        )


def _name(stored: bytes) -> bytes:
    """How a stored skeleton names its dictionary: by a prefix of its SHA-256 since tsk3."""
    assert stored.startswith(report_bodies.MAGIC3), stored[:5]
    return stored[5 : 5 + report_bodies.PREFIX]


def _tsk1(raw: bytes) -> bytes:
    """``raw`` as the tsk1 format stored it (a skeleton compressed against the preset dictionary alone)."""
    cut = report_bodies._cut(raw)
    assert cut is not None
    return report_bodies.MAGIC + report_bodies._compress(cut[0])


def _real_records() -> List[Evidence]:
    """Records of the shapes the tests use: a person's name in two of them, one too small to cut out."""
    return [
        evidence_record("ports", ANNA),
        evidence_record("accounts", {"users": [{"name": "anna", "home": "/home/anna", "uid": 1000}], "count": 1}),
        evidence_record("time", {"synchronised": True, "offset_s": 0.000123, "daemons": [CHRONY, TIMESYNCD]}),
        evidence_record("backup", {}),
    ]


def test_a_real_collection_joins_back_to_the_exact_bytes() -> None:
    """This machine's real ``tillsyn-agent collect --json``, every collector, as the agent signs it."""
    out = subprocess.run(
        [sys.executable, "-m", "agent.cli", "--config", str(ROOT / "config" / "agent.yaml"), "collect", "--json"],
        capture_output=True,
        check=True,
        timeout=25,
    ).stdout
    records = tuple(Evidence.from_dict(r) for r in json.loads(out))
    body = canonical(Report("a" * 32, "b" * 32, 7, datetime.now(timezone.utc), "test", records).to_dict())
    cut = report_bodies.split(body)
    assert cut is not None
    skeleton, pieces = cut
    assert report_bodies.join(skeleton, pieces) == body
    assert len(pieces) >= len(records) - 2  # all but the smallest records' parts are cut out
    assert len(skeleton) < len(body) / 10


def test_split_joins_back_to_the_exact_bytes_and_refuses_what_it_cannot_cut() -> None:
    at = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)
    body = canonical(Report("a" * 32, "b" * 32, 7, at, "test", tuple(_real_records())).to_dict())
    cut = report_bodies.split(body)
    assert cut is not None
    skeleton, pieces = cut
    # three records' pieces (backup's record is too small) and the dictionary: here the body's own parts
    assert skeleton.startswith(report_bodies.MAGIC2) and len(pieces) == 4
    assert report_bodies.join(skeleton, pieces) == body
    assert report_bodies.references(skeleton, pieces) == set(pieces)
    for damaged in (skeleton[:-3], skeleton[:-3] + bytes(3), skeleton[:40] + b"x" + skeleton[41:]):
        # damage is an error, or other bytes (which do not match body_sha256): never the body
        with contextlib.suppress(report_bodies.UnreadableBody):
            assert report_bodies.join(damaged, pieces) != body
    # a body that is not a canonical report is left whole; so is one with nothing worth cutting
    assert report_bodies.split(b'{"evidence": [], "seq": 1}') is None
    assert report_bodies.split(body.replace(b',"duration_ms":', b',"duration" :')) is None
    # every piece is needed: one missing is an error that names it, not other bytes
    gone = sorted(pieces)[0]
    try:
        report_bodies.join(skeleton, {d: p for d, p in pieces.items() if d != gone})
    except report_bodies.MissingPiece as err:
        assert gone.hex() in str(err)
    else:
        raise AssertionError("a missing piece went unnoticed")


def test_stored_once_read_back_exactly_and_verified(client: TestClient, centre: Centre, node: Node) -> None:
    sent = []
    for _ in range(4):  # the same evidence four times: its pieces stored once
        envelope = node.report(*_real_records())
        assert node.send(envelope).status_code == 200
        sent.append(envelope)
    rows = _stored(centre, node.agent_id)
    assert all(bytes(r.body).startswith(report_bodies.MAGIC3) for r in rows)
    assert len(stored_pieces(centre, node.agent_id)) == 4  # and one dictionary, the first report's parts
    with read_tx(centre.engine) as conn:
        bodies = report_bodies.Bodies(conn)
        for row, envelope in zip(rows, sent):
            raw = bodies.raw(node.agent_id, row.body)
            assert body_hash(raw) == row.body_sha256
            assert json.loads(raw) == decode(envelope)
    assert verify_store(centre.engine) == (1, [])
    # the evaluator reads a stored body when ingest's parsed copy is not at hand (another process stored it)
    with write_tx(centre.engine) as conn:
        conn.execute(pending_evaluation.insert().values(report_pk=rows[-1].id, agent_id=node.agent_id))
    done = centre.evaluate()
    assert (done.reports, done.unreadable, done.failed) == (1, 0, 0)
    # an old body stored whole (before migration 0011), and one as a tsk1 skeleton, read as before
    with write_tx(centre.engine) as conn:
        raw = report_bodies.body_of(conn, node.agent_id, rows[0].body)
        conn.execute(update(reports).where(reports.c.id == rows[0].id).values(body=raw))
        raw = report_bodies.body_of(conn, node.agent_id, rows[1].body)
        conn.execute(update(reports).where(reports.c.id == rows[1].id).values(body=_tsk1(raw)))
    assert verify_store(centre.engine) == (1, [])


def test_a_changed_or_missing_piece_is_found_by_verify(client: TestClient, centre: Centre, node: Node) -> None:
    for _ in range(2):
        assert node.send(node.report(*_real_records())).status_code == 200
    pieces = stored_pieces(centre, node.agent_id)
    ports = next(d for d, p in pieces.items() if p.startswith(b',"error"') and b'"port":2323' in p)
    changed = zlib.compress(pieces[ports].replace(b'"port":2323', b'"port":2324'))
    with write_tx(centre.engine) as conn:
        mine = (evidence_blobs.c.agent_id == node.agent_id) & (evidence_blobs.c.digest == ports)
        conn.execute(update(evidence_blobs).where(mine).values(data=changed))
    checked, problems = verify_store(centre.engine)
    assert checked == 1
    assert sorted((p.chain_index, p.problem.split(":")[0]) for p in problems) == [
        (1, "body does not match its recorded hash (changed)"),
        (1, "signature"),
        (2, "body does not match its recorded hash (changed)"),
        (2, "signature"),
    ]
    with write_tx(centre.engine) as conn:
        conn.execute(evidence_blobs.delete().where(mine))
    _, problems = verify_store(centre.engine)
    assert [p.chain_index for p in problems] == [1, 2]
    assert all(f"evidence piece {ports.hex()} is not stored" in p.problem for p in problems)


def test_erasure_takes_the_pieces_with_personal_data_and_the_chain_verifies(
    client: TestClient, centre: Centre, node: Node
) -> None:
    small = evidence_record("logging", {"user": "anna"})  # too small to be a piece: a literal of the skeleton
    for _ in range(3):
        assert node.send(node.report(*_real_records(), small)).status_code == 200
    assert node.send(node.report(evidence_record("backup", {}), evidence_record("time", CHRONY))).status_code == 200
    before = stored_pieces(centre, node.agent_id)
    assert any(b'"user":"anna"' in p for p in before.values())  # in the dictionary, the first report's parts
    now = datetime.now(timezone.utc)
    with write_tx(centre.engine) as conn:
        done = erase(conn, node.agent_id, "GDPR-1", "test", now, "test")
    assert done.reports == 3
    pieces = stored_pieces(centre, node.agent_id)  # the dictionaries included: none made of an unscrubbed body
    assert pieces and not any(b"anna" in p for p in pieces.values())
    # the next report of the node is not compressed against a dictionary erasure deleted
    assert node.send(node.report(evidence_record("accounts", {"users": [{"name": "bob"}] * 9}))).status_code == 200
    assert not any(b"anna" in p for p in stored_pieces(centre, node.agent_id).values())
    rows = _stored(centre, node.agent_id)
    assert [r.erased_sha256 is not None for r in rows] == [True] * 3 + [False] * 2
    with read_tx(centre.engine) as conn:
        bodies = report_bodies.Bodies(conn)
        assert all(body_hash(bodies.raw(node.agent_id, r.body)) == (r.erased_sha256 or r.body_sha256) for r in rows)
        assert all(b"anna" not in bodies.raw(node.agent_id, r.body) for r in rows)
        exported = build(conn, Request(end=datetime.now(timezone.utc) + timedelta(seconds=1), with_evidence=True))
    assert verify_store(centre.engine) == (1, [])
    checked = offline(json.loads(json.dumps(exported, default=str)))
    assert [p for p in checked.problems if not p.note] == [] and checked.reports_checked >= 1
    assert all("erased on request" in p.message for p in checked.problems)


def test_retention_deletes_pieces_no_report_left_refers_to(client: TestClient, centre: Centre, node: Node) -> None:
    nothing = {"sockets": [], "counts": {"all_interfaces": 0, "loopback": 0, "total": 0}}
    old, new = evidence_record("ports", ANNA), evidence_record("ports", nothing)
    for _ in range(2):
        assert node.send(node.report(old)).status_code == 200
    assert node.send(node.report(new)).status_code == 200
    with read_tx(centre.engine) as conn:  # its pieces and its dictionary (made of the first report's parts)
        kept = report_bodies.Bodies(conn).references(node.agent_id, _stored(centre, node.agent_id)[-1].body)
    assert len(kept) == 1  # its dictionary, the first report's: the new record stays in its skeleton
    now = datetime.now(timezone.utc) + timedelta(days=399)  # the cut-off: a day ago
    long_ago = datetime.now(timezone.utc) - timedelta(days=100)
    with write_tx(centre.engine) as conn:  # the first two reports, and the piece only they use, are old
        conn.execute(
            update(reports)
            .where(reports.c.agent_id == node.agent_id, reports.c.chain_index <= 2)
            .values(received_at=long_ago)
        )
        conn.execute(
            update(evidence_blobs)
            .where(evidence_blobs.c.agent_id == node.agent_id, evidence_blobs.c.digest.not_in(kept))
            .values(last_used=long_ago)
        )
        pruned = retention_run(conn, Retention(), now)
    assert (pruned.reports, pruned.evidence_pieces) == (2, 1)
    assert set(stored_pieces(centre, node.agent_id)) == kept
    with read_tx(centre.engine) as conn:
        assert conn.execute(select(func.count()).select_from(reports)).scalar_one() == 1
    checked = verify_ledger(centre.engine, retention=Retention(), now=now)
    assert (checked.checked, checked.problems) == (1, [])


def _body(seq: int, *records: Evidence) -> bytes:
    at = datetime(2026, 12, 7, 4, seq, tzinfo=timezone.utc)
    return canonical(Report("a" * 32, "b" * 32, seq, at, "test", records or tuple(_real_records())).to_dict())


def test_tsk1_tsk2_and_raw_join_exactly_and_each_check_can_fail(monkeypatch: Any) -> None:
    first, second = _body(1), _body(2)
    assert report_bodies.join(first, {}) == first  # raw
    tsk1 = _tsk1(first)
    cut = report_bodies.split(first)
    assert cut is not None
    assert report_bodies.join(tsk1, cut[1]) == first
    assert report_bodies.references(tsk1) == set(cut[1]) - {cut[0][5:37]}  # no dictionary
    # the second body against the first's parts: the dictionary is a piece, named after the magic
    dictionary = report_bodies._cut(first)
    assert dictionary is not None
    against = report_bodies.split(second, dictionary[0])
    assert against is not None
    skeleton, pieces = against
    name = skeleton[len(report_bodies.MAGIC2) : len(report_bodies.MAGIC2) + 32]
    assert pieces[name] == dictionary[0] and report_bodies.join(skeleton, pieces) == second
    assert len(skeleton) < len(tsk1) / 2
    # the dictionary piece missing: MissingPiece naming it; another dictionary under its name: never the body
    try:
        report_bodies.join(skeleton, {d: p for d, p in pieces.items() if d != name})
    except report_bodies.MissingPiece as err:
        assert name.hex() in str(err) and "dictionary" in str(err)
    else:
        raise AssertionError("a missing dictionary went unnoticed")
    with contextlib.suppress(report_bodies.UnreadableBody):
        assert report_bodies.join(skeleton, {**pieces, name: dictionary[0][:-40] + bytes(40)}) != second
    for damaged in (skeleton[:20], skeleton[:-3], skeleton[:60] + b"x" + skeleton[61:]):
        with contextlib.suppress(report_bodies.UnreadableBody):
            assert report_bodies.join(damaged, pieces) != second
    try:
        report_bodies.join(skeleton[:20], pieces)
    except report_bodies.UnreadableBody as err:
        assert "damaged" in str(err)
    else:
        raise AssertionError("a cut skeleton went unnoticed")
    # the join check before storing: a skeleton that does not join back (here the dictionary differs
    # between writing and reading) is not returned, and the body is stored raw
    calls = iter(range(1000))
    real = report_bodies._zdict
    monkeypatch.setattr(report_bodies, "_zdict", lambda d: real(d if next(calls) % 2 else d[::-1]))
    assert report_bodies.split(second, dictionary[0]) is None


def test_pieces_are_compressed_with_a_preset_dictionary_and_old_ones_still_read() -> None:
    piece = _body(1)[200:900]
    packed = report_bodies.pack_piece(piece)
    assert packed[1] & 0x20 and packed[2:6] == report_bodies._PIECE_ADLER  # FDICT and the dictionary's Adler-32
    assert report_bodies.unpack_piece(packed) == piece
    assert report_bodies.unpack_piece(zlib.compress(piece, 6)) == piece  # stored before: plain zlib
    other = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, b"another dictionary")
    for unknown in (other.compress(piece) + other.flush(), packed[:-5]):
        try:
            report_bodies.unpack_piece(unknown)
        except zlib.error:
            pass
        else:
            raise AssertionError("a piece that cannot be read was read")
    chrony = canonical(evidence_record("time", {"daemons": [CHRONY, TIMESYNCD], "synchronised": True}).to_dict())
    assert len(report_bodies.pack_piece(chrony)) < len(zlib.compress(chrony, 9)) - 100


def test_the_dictionary_is_remade_when_the_cache_cannot_be_used(client: TestClient, centre: Centre, node: Node) -> None:
    """Restart or another replica (an empty cache), a dictionary erased or older than REFRESH, a
    skeleton too large against it: each makes a new one, and every body reads back."""
    now = datetime.now(timezone.utc)
    bodies = [_body(i) for i in range(1, 6)]
    names13 = ["power", "disk_encryption", "antivirus", "backup", "ports", "logging", "time", "sshd", "accounts"]
    names13 += ["updates", "firewall", "file_integrity", "service_access"]
    bodies.append(
        _body(6, *(evidence_record(n, {"value": hashlib.sha256(n.encode()).hexdigest() * 4}) for n in names13))
    )
    small = _body(7, evidence_record("backup", {}), evidence_record("time", {"daemons": [CHRONY, TIMESYNCD]}))
    stored: List[bytes] = []
    caches: List[report_bodies.Dictionaries] = [{}, {}]
    with write_tx(centre.engine) as conn:
        stored.append(report_bodies.store(conn, node.agent_id, bodies[0], now, caches[0]))
        stored.append(report_bodies.store(conn, node.agent_id, bodies[1], now, caches[1]))  # another replica
        stored.append(report_bodies.store(conn, node.agent_id, bodies[2], now, caches[0]))  # the first's again
    names = [_name(s) for s in stored]
    assert names[0] != names[1] and names[2] == names[0] == caches[0][node.agent_id][0][: report_bodies.PREFIX]
    with write_tx(centre.engine) as conn:  # erased in another process: not used, its bytes not written again
        conn.execute(evidence_blobs.delete().where(evidence_blobs.c.digest == caches[0][node.agent_id][0]))
        stored.append(report_bodies.store(conn, node.agent_id, bodies[3], now, caches[0]))
        later = now + report_bodies.REFRESH
        stored.append(report_bodies.store(conn, node.agent_id, bodies[4], later, caches[0]))  # too old
        caches[0][node.agent_id] = (hashlib.sha256(b"x").digest(), b"x", later, frozenset())
        conn.execute(
            report_bodies._UPSERT[conn.dialect.name],
            [{"agent_id": node.agent_id, "digest": caches[0][node.agent_id][0], "data": b"", "last_used": later}],
        )
        big = report_bodies.store(conn, node.agent_id, bodies[5], later, caches[0])  # too large against it
        assert caches[0][node.agent_id][0] != hashlib.sha256(b"x").digest()
        assert _name(big) == caches[0][node.agent_id][0][: report_bodies.PREFIX]
        small_one = report_bodies.store(conn, node.agent_id, small, later, caches[0])
        assert _name(small_one) == _name(big)  # a report of fewer collectors uses the full one's dictionary
    assert len({_name(s) for s in stored[3:]}) == 2 and names[0] not in {_name(s) for s in stored[3:]}
    with read_tx(centre.engine) as conn:
        read = report_bodies.Bodies(conn)
        readable = [stored[1], *stored[3:], big, small_one]
        assert [read.raw(node.agent_id, s) for s in readable] == [bodies[1], *bodies[3:], small]
        for gone in (stored[0], stored[2]):
            try:
                read.raw(node.agent_id, gone)
            except report_bodies.MissingPiece as err:
                assert names[0].hex() in str(err)
            else:
                raise AssertionError("a skeleton whose dictionary is gone was read")


def test_verify_names_a_missing_dictionary(client: TestClient, centre: Centre, node: Node) -> None:
    for _ in range(2):
        assert node.send(node.report(*_real_records())).status_code == 200
    name = _name(bytes(_stored(centre, node.agent_id)[0].body))
    with write_tx(centre.engine) as conn:
        low, high = name + bytes(32 - len(name)), name + b"\xff" * (32 - len(name))
        assert conn.execute(evidence_blobs.delete().where(evidence_blobs.c.digest.between(low, high))).rowcount == 1
    _, problems = verify_store(centre.engine)
    assert [p.chain_index for p in problems] == [1, 2]
    assert all(f"evidence piece {name.hex()}… is not stored (the skeleton's dictionary)" in p.problem for p in problems)


def test_a_changed_small_record_stays_in_the_skeleton(
    client: TestClient, centre: Centre, node: Node, monkeypatch: Any
) -> None:
    """The time collector's record changes at every collection: after the first report it is kept in
    the skeleton against the dictionary's copy, not stored as a new piece; a large record that
    changes is a new piece; a node beyond the cache's room is compressed against an empty dictionary."""
    now = datetime.now(timezone.utc)
    big = evidence_record("updates", {"packages": [f"package-{i}" for i in range(400)]})
    bodies = [
        _body(i, *_real_records()[:2], evidence_record("time", {**CHRONY, "offset_s": i / 1e6}), big)
        for i in range(1, 4)
    ]
    bigger = evidence_record("updates", {"packages": [f"package-{i}" for i in range(401)]})
    bodies.append(_body(4, *_real_records()[:2], evidence_record("time", {**CHRONY, "offset_s": 4e-6}), bigger))
    cache: report_bodies.Dictionaries = {}
    with write_tx(centre.engine) as conn:
        stored = [report_bodies.store(conn, node.agent_id, b, now, cache) for b in bodies[:3]]
        first = set(_pieces_in(conn, node.agent_id))
        stored.append(report_bodies.store(conn, node.agent_id, bodies[3], now, cache))
        assert len(set(_pieces_in(conn, node.agent_id)) - first) == 1  # the larger record's new piece
        monkeypatch.setattr(report_bodies, "_CACHE_LIMIT", 1)
        other = report_bodies.store(conn, node.agent_id, bodies[0], now, {"another node": cache[node.agent_id]})
    assert len(first) == 5  # ports, accounts, time and updates of the first report, and its dictionary
    assert len({_name(s) for s in stored}) == 1 and len(stored[1]) < len(_tsk1(bodies[1])) / 3
    assert _name(other) == hashlib.sha256(b"").digest()[: report_bodies.PREFIX]
    with read_tx(centre.engine) as conn:
        read = report_bodies.Bodies(conn)
        assert [read.raw(node.agent_id, s) for s in [*stored, other]] == [*bodies, bodies[0]]
        refs = read.references(node.agent_id, stored[1])
    pieces = stored_pieces(centre, node.agent_id)
    # its dictionary, ports, accounts and updates; the time record is in the skeleton
    assert len(refs) == 4 and not any(b'"offset_s"' in pieces[d] for d in refs - {cache[node.agent_id][0]})


def _pieces_in(conn: Any, agent_id: str) -> List[bytes]:
    return [
        bytes(d)
        for d in conn.execute(select(evidence_blobs.c.digest).where(evidence_blobs.c.agent_id == agent_id)).scalars()
    ]


def test_a_full_reader_cache_keeps_the_pieces_of_the_body_it_reads(centre: Centre, node: Node) -> None:
    """A reader that clears its cache to stay within its bound fetches every piece of the body it is
    reading, not only the new ones: ``verify`` reads a node's whole chain through one reader."""
    at = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)
    moved = {"sockets": [dict(ANNA["sockets"][0], port=2424)]}
    bodies = [
        canonical(Report(node.agent_id, "b" * 32, seq, at, "test", tuple(records)).to_dict())
        for seq, records in ((1, _real_records()), (2, [evidence_record("ports", moved), *_real_records()[1:]]))
    ]
    skeletons, pieces = [], {}
    for raw in bodies:
        cut = report_bodies._cut(raw)
        assert cut is not None
        skeletons.append(_tsk1(raw))
        pieces.update(cut[1])
    assert len(pieces) == 4  # three shared by both bodies, and the second's changed ports record
    with write_tx(centre.engine) as conn:
        conn.execute(
            evidence_blobs.insert(),
            [
                {"agent_id": node.agent_id, "digest": d, "data": report_bodies.pack_piece(p), "last_used": at}
                for d, p in pieces.items()
            ],
        )
    with read_tx(centre.engine) as conn:
        read = report_bodies.Bodies(conn, limit=3)  # the first body's three pieces fill it
        assert [read.raw(node.agent_id, s) for s in skeletons] == bodies


def test_a_full_dictionary_cache_drops_the_nodes_that_stopped_reporting(
    centre: Centre, node: Node, monkeypatch: Any
) -> None:
    at = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)
    raw = canonical(Report(node.agent_id, "b" * 32, 1, at, "test", tuple(_real_records())).to_dict())
    cache: report_bodies.Dictionaries = {
        "gone": (b"x" * 32, b"old", at - timedelta(days=2), frozenset()),
        "here": (b"y" * 32, b"new", at - timedelta(hours=2), frozenset()),
    }
    monkeypatch.setattr(report_bodies, "_CACHE_LIMIT", 2)
    monkeypatch.setitem(report_bodies._LOOKED, "at", at - timedelta(hours=2))
    with write_tx(centre.engine) as conn:
        stored = report_bodies.store(conn, node.agent_id, raw, at, cache)
    assert set(cache) == {"here", node.agent_id}  # the node silent for two days made room
    assert _name(stored) == cache[node.agent_id][0][: report_bodies.PREFIX]  # against its own new dictionary
    # a full cache looked through within the hour is not looked through again: the node is
    # compressed against no dictionary, and the silent node stays until the next look
    monkeypatch.setitem(report_bodies._LOOKED, "at", at)
    del cache[node.agent_id]
    cache["gone"] = (b"x" * 32, b"old", at - timedelta(days=2), frozenset())
    with write_tx(centre.engine) as conn:
        again = report_bodies.store(conn, node.agent_id, raw, at, cache)
    assert _name(again) == report_bodies._EMPTY[: report_bodies.PREFIX] and set(cache) == {"here", "gone"}


def test_the_evaluator_reads_again_a_body_an_erasure_rewrote_under_it(
    client: TestClient, centre: Centre, node: Node
) -> None:
    """The evaluator read a queued report's row, then an erasure committed (PostgreSQL reads each
    statement anew): the row it holds names a dictionary the erasure deleted.  It reads the body
    again as it is now, and judges the scrubbed report, instead of counting it unreadable."""
    from types import SimpleNamespace

    from central.judging.evaluation import _read_body

    small = evidence_record("logging", {"user": "anna"})
    assert node.send(node.report(*_real_records(), small)).status_code == 200
    (row,) = _stored(centre, node.agent_id)
    with write_tx(centre.engine) as conn:
        assert erase(conn, node.agent_id, "GDPR-2", "test", datetime.now(timezone.utc), "test").reports == 1
    held = SimpleNamespace(agent_id=node.agent_id, report_pk=row.id, body=row.body)  # as read before
    with read_tx(centre.engine) as conn:
        with contextlib.suppress(report_bodies.UnreadableBody):
            report_bodies.Bodies(conn).raw(node.agent_id, row.body)
            raise AssertionError("the old skeleton still reads: the test shows nothing")
        raw = _read_body(conn, report_bodies.Bodies(conn), held)
    assert body_hash(raw) == _stored(centre, node.agent_id)[0].erased_sha256 and b"anna" not in raw


def test_tsk3_names_its_dictionary_by_a_prefix_and_every_older_format_still_reads(centre: Centre, node: Node) -> None:
    at = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)
    bodies = [_body(i) for i in range(1, 4)]
    cache: report_bodies.Dictionaries = {}
    with write_tx(centre.engine) as conn:
        stored = [report_bodies.store(conn, node.agent_id, b, at, cache) for b in bodies]
    digest = cache[node.agent_id][0]
    assert all(_name(s) == digest[:8] for s in stored) and report_bodies.PREFIX == 8
    tsk2 = report_bodies.MAGIC2 + digest + stored[1][13:]  # the same compressed parts, the dictionary named whole
    assert len(stored[1]) == len(tsk2) - 24
    pieces = stored_pieces(centre, node.agent_id)
    assert report_bodies.join(stored[1], pieces) == bodies[1] == report_bodies.join(tsk2, pieces)
    assert report_bodies.references(stored[1], pieces) == report_bodies.references(tsk2, pieces) == set(pieces)
    with read_tx(centre.engine) as conn:
        read = report_bodies.Bodies(conn)
        assert read.as_tsk2(node.agent_id, stored[1]) == tsk2 and read.as_tsk2(node.agent_id, tsk2) == tsk2
        tsk1 = read.as_tsk1(node.agent_id, stored[1])
        assert tsk1.startswith(report_bodies.MAGIC) and tsk1 == read.as_tsk1(node.agent_id, tsk2)
        for form in (stored[1], tsk2, tsk1, bodies[1]):  # tsk3, and every format before it
            assert read.raw(node.agent_id, form) == bodies[1] == report_bodies.Bodies(conn).raw(node.agent_id, form)
        assert read.references(node.agent_id, stored[2]) == read.references(node.agent_id, tsk2) == set(pieces)
        assert [read.raw(node.agent_id, s) for s in stored] == bodies
        # a prefix no piece begins with: MissingPiece naming it; a skeleton cut short: damaged, never a body
        nowhere = stored[1][:5] + bytes(8) + stored[1][13:]
        for damaged, said in ((nowhere, f"evidence piece {bytes(8).hex()}… is not stored"), (stored[1][:9], "damaged")):
            try:
                read.raw(node.agent_id, damaged)
            except report_bodies.UnreadableBody as err:
                assert said in str(err)
            else:
                raise AssertionError("an unreadable tsk3 skeleton was read")


def _stored_piece(conn: Any, agent_id: str, digest: bytes, at: datetime) -> None:
    data = report_bodies.pack_piece(b"another piece")
    conn.execute(evidence_blobs.insert().values(agent_id=agent_id, digest=digest, data=data, last_used=at))


def test_a_prefix_shared_by_two_pieces_is_never_written_nor_guessed(centre: Centre, node: Node) -> None:
    """Pieces that begin as another does (written here outside the centre): a dictionary whose prefix
    another piece of the node shares is named whole (tsk2); a body one of whose new pieces would
    begin as a stored piece does is stored whole; a reader that finds two pieces for a prefix refuses."""
    at = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)
    big = evidence_record("updates", {"packages": [f"package-{i}" for i in range(400)]})
    first, second, third, fourth = _body(1), _body(2), _body(3, *_real_records(), big), _body(4)
    cache: report_bodies.Dictionaries = {}
    with write_tx(centre.engine) as conn:
        one = report_bodies.store(conn, node.agent_id, first, at, cache)
    digest = cache[node.agent_id][0]
    assert _name(one) == digest[:8]
    with write_tx(centre.engine) as conn:  # a piece written outside the centre begins as the dictionary does
        _stored_piece(conn, node.agent_id, digest[:8] + bytes(24), at)
    with read_tx(centre.engine) as conn:
        joined = lambda agent_id, stored: report_bodies.join(stored, stored_pieces(centre, agent_id))  # noqa: E731
        for read in (report_bodies.Bodies(conn).raw, joined):
            try:
                read(node.agent_id, one)
            except report_bodies.MissingPiece:
                raise AssertionError("two pieces for one prefix are not a missing piece") from None
            except report_bodies.UnreadableBody as err:
                assert f"2 evidence pieces begin with {digest[:8].hex()}" in str(err)
            else:
                raise AssertionError("a skeleton was read against one of two dictionaries")
    with write_tx(centre.engine) as conn:
        two = report_bodies.store(conn, node.agent_id, second, at, cache)
    assert two.startswith(report_bodies.MAGIC2) and two[5:37] == digest  # the same dictionary, named whole
    # a new piece (the large record) that would begin as a stored piece does: the body stays whole
    new = [d for _, _, d in report_bodies._found(third) if d not in stored_pieces(centre, node.agent_id)]
    assert len(new) == 1
    with write_tx(centre.engine) as conn:
        _stored_piece(conn, node.agent_id, new[0][:8] + b"\xff" * 24, at)
        assert report_bodies.store(conn, node.agent_id, third, at, cache) == third
    assert new[0] not in stored_pieces(centre, node.agent_id)
    # a new dictionary that would: the body stays whole, and the next one makes another dictionary
    with write_tx(centre.engine) as conn:
        probe: report_bodies.Dictionaries = {}
        with conn.begin_nested() as savepoint:
            report_bodies.store(conn, node.agent_id, second, at, probe)
            savepoint.rollback()
        made = probe[node.agent_id][0]
        assert made not in _pieces_in(conn, node.agent_id)
        _stored_piece(conn, node.agent_id, made[:8] + bytes(23) + b"\x01", at)
        fresh: report_bodies.Dictionaries = {}
        assert report_bodies.store(conn, node.agent_id, second, at, fresh) == second
        assert made not in _pieces_in(conn, node.agent_id)
        again = report_bodies.store(conn, node.agent_id, fourth, at, fresh)
    assert fresh[node.agent_id][0] != made and _name(again) == fresh[node.agent_id][0][:8]
    with read_tx(centre.engine) as conn:
        assert [report_bodies.Bodies(conn).raw(node.agent_id, s) for s in (two, again)] == [second, fourth]


def test_a_dictionary_is_found_by_its_prefix_through_the_primary_key(centre: Centre) -> None:
    """The readers' and the writer's prefix look-ups are ranges of (agent_id, digest), never a scan."""
    values = {"agent_key": "a" * 22, "digests": [bytes(32)], "fresh_since": datetime.now(timezone.utc)}
    values.update(report_bodies._range(bytes.fromhex("0123456789abcdef")))
    sent: List[Any] = []
    with read_tx(centre.engine) as conn:
        sqlite = conn.dialect.name == "sqlite"
        if not sqlite:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a small table is cheaper to scan
        listen = lambda *args: sent.append(args[2:4])  # noqa: E731 (the statement and its parameters)
        event.listen(conn, "before_cursor_execute", listen)
        for statement in (report_bodies._PIECES_STARTING, report_bodies._STARTING, report_bodies._FRESH):
            conn.execute(statement, values).all()
        event.remove(conn, "before_cursor_execute", listen)
        for sql, params in sent:
            explain = "EXPLAIN QUERY PLAN" if sqlite else "EXPLAIN"
            plan = " / ".join(str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {sql}", params))
            if sqlite:
                assert "SCAN" not in plan and "digest>? AND digest<?" in plan, plan
            else:
                assert "Seq Scan" not in plan and "pk_evidence_blobs" in plan and "digest >=" in plan, plan
    assert len(sent) == 3
