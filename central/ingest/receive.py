"""Receiving reports and heartbeats: verify, refuse replays, store exactly once, chain.

Order of checks, cheapest and most trust-establishing first: size, known agent,
request signature over the exact body, then parsing and each report's own signature
(all before the write lock, see central/ingest/endpoints.py), then under the lock the
agent's row: revoked, and each report's sequence and time.  An agent whose row says
revoked is refused there at the latest (before parsing when its key was not yet
known to the process).  Any refusal stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Set, Tuple

from sqlalchemy import ARRAY, Connection, RowMapping, any_, bindparam, select, update

from central.config import Limits
from central.db import report_bodies
from central.db.schema import REPORT_KEY, agents, pending_evaluation, report_key, reports
from central.ingest import heartbeat_store
from central.ingest.ledger import body_hash, entry_hash
from central.request_refused import RequestRefused, refuse
from evidence.signing import SignatureError, verify
from evidence.wire import Heartbeat, Report, WireError, parse_heartbeat, parse_report
from evidence.wire import loads as wire_loads

_COLLECTOR = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""A NUL character escaped in a JSON string (not an escaped backslash followed by ``u0000``)."""


def holds_nul(raw: bytes) -> bool:
    """Whether a JSON text has a NUL character escaped in a string."""
    return b"\\u0000" in raw and _NUL.search(raw) is not None  # the plain search first: the pattern is slow on 9 KB


def refuse_nul(raw: bytes, where: str, index: Optional[int] = None) -> None:
    """PostgreSQL cannot store NUL in text; refuse it on both databases alike, before storing."""
    if holds_nul(raw):
        raise refuse(400, "malformed", f"{where}: a string contains a NUL character (\\u0000)", index=index)


# Built once: ingest runs these for every request, and building a statement costs more than running it.
_BEAT = (
    update(agents)
    .where(agents.c.id == bindparam("agent_key"))
    .values(
        last_heartbeat_seq=bindparam("seq"),
        last_heartbeat_at=bindparam("at"),
        health=bindparam("health", type_=agents.c.health.type),
        silent=False,
        silent_since=None,
    )
)
_AGENT = select(agents).where(agents.c.id == bindparam("agent_key"))
# Agents' rows are locked FOR NO KEY UPDATE (``key_share=True``), the lock PostgreSQL's own UPDATE of
# non-key columns takes: writers of one agent still wait for each other, but not for a transaction that
# only inserts rows referring to the agent (findings, changes, incidents: a KEY SHARE lock each), which
# FOR UPDATE would wait for, and deadlock with when that transaction takes its agents in another order.
_AGENT_LOCKED = _AGENT.with_for_update(key_share=True)
# A report sent again (the node did not hear the answer) has the sequence number it was stored with.
# Sequence numbers rise along a node's chain (ingest stores none that is not after the last), so the
# entry with sequence S is one of the node's last (last - S + 1) entries: a short range of
# uq_reports_agent_chain for a resend (the spool's unanswered batch), none for a new report (whose id
# is looked up below). Since migration 0016 (node, sequence) has no index of its own (about 45 bytes a report).
_KNOWN = select(reports.c.body_sha256, reports.c.report_id).where(
    reports.c.agent_id == bindparam("agent_key"),
    reports.c.chain_index >= bindparam("from_key"),
    reports.c.seq == bindparam("seq_key"),
)
LOOKBACK = 10_000
"""How far behind the node's last sequence number a resend is looked for by its sequence (a node's spool
holds at most about 8,000 reports, 30 days at the shipped intervals); further back, by its id."""
SAME_KEY = 16
"""At most this many of a node's reports may have ids with the same first REPORT_KEY characters, so that
looking one up stays a few rows (an agent's ids are random: two of a year's 100,000 reports share them
about 20 times, three almost never); a report id beyond it is refused."""
# A report id the node used before, looked up through ix_reports_report_key (since migration 0016 ingest,
# which holds the node's row, keeps a node's report ids unique): a resend further back than LOOKBACK is
# found so, and a new report that reuses an id is refused. The prefix's bounds are literals and the id is
# compared here: SQLite uses an expression index only for the very expression it was made of, and a bound
# parameter, or another condition on report_id, hides it.
_BY_ID = (
    select(reports.c.body_sha256, reports.c.report_id)
    .where(report_key(reports.c.report_id) == bindparam("prefix_key"), reports.c.agent_id == bindparam("agent_key"))
    .limit(SAME_KEY)
)
_STORE = reports.insert()
_QUEUE = pending_evaluation.insert()
_ADVANCE = (
    update(agents)
    .where(agents.c.id == bindparam("agent_key"))
    .values(
        last_report_seq=bindparam("seq"),
        last_report_at=bindparam("at"),
        ledger_length=bindparam("length"),
        ledger_head=bindparam("head"),
    )
)


_LOCK_AGENTS = (
    select(agents.c.id)
    .where(agents.c.id == any_(bindparam("agent_keys", type_=ARRAY(agents.c.id.type))))
    .order_by(agents.c.id)
    .with_for_update(key_share=True)
)
"""PostgreSQL only; ``= ANY(array)`` is one statement text for any number of agents (an ``IN`` list
would be a text, and a prepared statement, per batch size)."""


def lock_agents(conn: Connection, agent_ids: List[str]) -> None:
    """Lock these agents' rows, in id order, until the transaction ends (PostgreSQL: the group writer
    takes a batch's rows this way first, so two centre processes never take them in opposite orders)."""
    conn.execute(_LOCK_AGENTS, {"agent_keys": agent_ids}).all()


def require_signed(agent_id: Optional[str], signature: Optional[str]) -> Tuple[str, str]:
    if not agent_id or not signature:
        raise refuse(401, "unsigned", "missing X-Tillsyn-Agent or X-Tillsyn-Signature header")
    return agent_id, signature


def authenticate(
    conn: Connection,
    agent_id: Optional[str],
    signature: Optional[str],
    body: bytes,
    verified_key: Optional[str] = None,
    *,
    lock: bool = True,
) -> RowMapping:
    """The agent row, once the request signature over ``body`` is checked (``verified_key``: the
    public key the same signature was already checked with, in this request, before the write lock).
    ``lock``: on PostgreSQL the row stays locked until the transaction ends (False to only look up
    the key: a lookup must not wait for a write transaction that holds the row)."""
    agent_id, signature = require_signed(agent_id, signature)
    query = _AGENT_LOCKED if lock and conn.dialect.name == "postgresql" else _AGENT
    agent = admitted(agent_id, conn.execute(query, {"agent_key": agent_id}).mappings().first(), verified_key)
    if verified_key is None:
        check_signature(agent["public_key"], body, signature)
    return agent


def admitted(agent_id: str, agent: Optional[RowMapping], verified_key: Optional[str]) -> RowMapping:
    """The agent's row, unless there is none, it is revoked, or it holds another key than the one the
    request (and its reports) were checked with."""
    if agent is None:
        raise refuse(401, "unknown_agent", f"unknown agent {agent_id[:64]!r}", "enrol the node again")
    if agent["revoked_at"] is not None:
        raise refuse(403, "revoked", f"agent {agent_id} was revoked", "enrol the node again with a new token")
    if verified_key is not None and agent["public_key"] != verified_key:
        raise refuse(401, "bad_signature", "request signature: not made with the node's key")
    return agent


def check_signature(public_key: str, body: bytes, signature: str) -> None:
    try:
        verify(public_key, body, signature)
    except SignatureError as err:
        raise request_signature_refused(err) from err


def request_signature_refused(err: SignatureError) -> RequestRefused:
    return refuse(401, "bad_signature", f"request signature: {err}")


@dataclass
class BatchResult:
    stored: List[str] = field(default_factory=list)
    duplicates: List[str] = field(default_factory=list)
    parsed: List[Tuple[int, str, Report, int]] = field(default_factory=list)
    """(row id, body SHA-256, report, body size) of each stored report, for the evaluator (ingest/parsed_cache.py)."""

    def body(self) -> Dict[str, Any]:
        return {"stored": self.stored, "duplicates": self.duplicates, "acknowledged": self.stored + self.duplicates}


def _items(body: bytes, limits: Limits) -> List[Any]:
    try:
        data = wire_loads(body, "request body")
    except WireError as err:
        raise refuse(400, "malformed", str(err)) from err
    if not isinstance(data, dict) or not isinstance(data.get("reports"), list):
        raise refuse(400, "malformed", "request body must be an object with a 'reports' list")
    items: List[Any] = data["reports"]
    if not items:
        raise refuse(400, "malformed", "'reports' is empty")
    if len(items) > limits.max_reports_per_batch:
        raise refuse(413, "too_large", f"{len(items)} reports in one batch; at most {limits.max_reports_per_batch}")
    return items


def _decode(item: Any, index: int) -> tuple[bytes, str]:
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("body"), str)
        or not isinstance(item.get("signature"), str)
    ):
        raise refuse(
            400, "malformed", f"reports[{index}] must be an object with string 'body' and 'signature'", index=index
        )
    try:
        return base64.b64decode(item["body"], validate=True), item["signature"]
    except binascii.Error as err:
        raise refuse(400, "malformed", f"reports[{index}].body is not base64", index=index) from err


@dataclass(frozen=True)
class Prepared:
    """One report of a batch, verified and parsed (no database needed), ready to store."""

    index: int
    raw: bytes
    signature: str
    report: Report
    digest: str


@dataclass(frozen=True)
class SignedReport:
    """One report of a batch as sent: its exact bytes and their signature, not yet checked."""

    index: int
    raw: bytes
    signature: str


def unpack_reports(body: bytes, limits: Limits) -> List[SignedReport]:
    """The reports of a batch whose request signature is checked, decoded but not yet checked."""
    return [SignedReport(index, *_decode(item, index)) for index, item in enumerate(_items(body, limits))]


def report_signature_refused(index: int, err: SignatureError) -> RequestRefused:
    return refuse(401, "bad_signature", f"reports[{index}]: {err}", index=index)


def parse_signed(signed: List[SignedReport], agent_id: str) -> List[Prepared]:
    """Parse and check reports whose signatures are checked: content and sender, everything that needs
    no database, so it runs before the write lock."""
    prepared = []
    for item in signed:
        index, raw = item.index, item.raw
        where = f"reports[{index}]"
        refuse_nul(raw, where, index)
        try:
            report = parse_report(raw, where)
        except WireError as err:
            raise refuse(400, "malformed", str(err), index=index) from err
        except OverflowError as err:  # a time such as 0001-01-01T00:00:00+05:00 has no UTC form
            raise refuse(400, "malformed", f"{where}: a time is out of range: {err}", index=index) from err
        if report.agent_id != agent_id:
            raise refuse(
                400, "malformed", f"{where}: report of agent {report.agent_id}, sent by {agent_id}", index=index
            )
        _check_storable(report, where, index)
        prepared.append(Prepared(index, raw, item.signature, report, body_hash(raw)))
    return prepared


def _stored(
    conn: Connection, agent_id: str, report: Report, last_seq: int, length: int, where: str, index: int
) -> Optional[Any]:
    """The stored report ``report`` was sent as before, or the one with its sequence number or its id: None
    when neither is stored. The row with its id is preferred, so a report stored under another sequence is
    found for what it is."""
    known = None
    if 0 <= last_seq - report.seq < LOOKBACK:
        keys = {"agent_key": agent_id, "from_key": length - (last_seq - report.seq), "seq_key": report.seq}
        known = conn.execute(_KNOWN, keys).first()
    if known is None or known.report_id != report.report_id:
        keys = {"prefix_key": report.report_id[:REPORT_KEY], "agent_key": agent_id}
        alike = conn.execute(_BY_ID, keys).all()
        known = next((r for r in alike if r.report_id == report.report_id), known)
        if known is None and len(alike) >= SAME_KEY:
            raise refuse(
                400,
                "malformed",
                f"{where}: report id {report.report_id}: the node has {SAME_KEY} reports whose ids begin "
                f"{report.report_id[:REPORT_KEY]!r} already; report ids must be random (docs/protocol.md)",
                index=index,
            )
    return known


def store_reports(
    conn: Connection,
    agent: RowMapping,
    prepared: List[Prepared],
    limits: Limits,
    now: datetime,
) -> BatchResult:
    """Store, chain and queue for evaluation every new report of a prepared batch, in order;
    the caller's transaction commits (central/judging/evaluation.py judges them afterwards).  A refusal
    may come after earlier reports of the batch were written: run this in a savepoint."""
    result = BatchResult()
    last_seq = int(agent["last_report_seq"])
    length = int(agent["ledger_length"])
    head = str(agent["ledger_head"])
    newest: Optional[datetime] = None
    for item in prepared:
        report, index, digest, signature = item.report, item.index, item.digest, item.signature
        where = f"reports[{index}]"
        known = _stored(conn, agent["id"], report, last_seq, length, where, index)
        if known is not None and known.body_sha256 == digest:
            result.duplicates.append(report.report_id)
            continue
        if known is not None and known.report_id == report.report_id:
            raise refuse(
                409, "conflict", f"{where}: report {report.report_id} was stored with other content", index=index
            )
        if report.seq <= last_seq:
            raise refuse(
                409,
                "replay",
                f"{where}: sequence {report.seq} is not after the last stored {last_seq}: "
                "a replayed or reordered report",
                index=index,
            )
        if report.collected_at > now + timedelta(seconds=limits.clock_skew_s):
            raise refuse(
                400,
                "clock",
                f"{where}: collected_at {report.collected_at:%Y-%m-%dT%H:%M:%SZ} is in the "
                "future; check the node's clock (NTP)",
                index=index,
            )
        length += 1
        new_head = entry_hash(head, agent["id"], length, digest, signature)
        stored = conn.execute(
            _STORE,
            {
                "agent_id": agent["id"],
                "report_id": report.report_id,
                "seq": report.seq,
                "collected_at": report.collected_at,
                "received_at": now,
                "body": report_bodies.store(conn, agent["id"], item.raw, now),
                "signature": signature,
                "body_sha256": digest,
                "chain_index": length,  # the previous hash (head) is not stored: entry length - 1's hash
                "entry_hash": new_head,
            },
        )
        head, last_seq = new_head, report.seq
        newest = report.collected_at
        key = stored.inserted_primary_key
        assert key is not None
        conn.execute(_QUEUE, {"report_pk": key[0], "agent_id": agent["id"]})
        result.stored.append(report.report_id)
        result.parsed.append((int(key[0]), digest, report, len(item.raw)))
    if result.stored:
        conn.execute(
            _ADVANCE,
            {"agent_key": agent["id"], "seq": last_seq, "at": newest, "length": length, "head": head},
        )
    return result


def _check_storable(report: Report, where: str, index: int) -> None:
    """Refuse what one database would store and another reject, so both answer alike (400, not 500)."""
    for i, record in enumerate(report.evidence):
        at = f"{where}.evidence[{i}]"
        if not _COLLECTOR.fullmatch(record.collector):
            raise refuse(400, "malformed", f"{at}.collector: must be 1-64 of A-Z a-z 0-9 _ . -", index=index)


def prepare_heartbeat(body: bytes, agent_id: str, limits: Limits, now: datetime) -> Heartbeat:
    """Parse and check a heartbeat whose request signature is checked (no database needed)."""
    refuse_nul(body, "heartbeat")
    try:
        beat = parse_heartbeat(body)
    except WireError as err:
        raise refuse(400, "malformed", str(err)) from err
    except OverflowError as err:
        raise refuse(400, "malformed", f"heartbeat: a time is out of range: {err}") from err
    if beat.agent_id != agent_id:
        raise refuse(400, "malformed", f"heartbeat of agent {beat.agent_id}, sent by {agent_id}")
    if beat.sent_at < now - timedelta(seconds=limits.heartbeat_max_age_s):
        raise refuse(409, "replay", "heartbeat is too old to be current: a replay, or the node's clock is wrong")
    if beat.sent_at > now + timedelta(seconds=limits.clock_skew_s):
        raise refuse(400, "clock", "heartbeat sent_at is in the future; check the node's clock (NTP)")
    return beat


@dataclass(frozen=True)
class CheckedBeat:
    """A prepared heartbeat and the key its request signature was checked with."""

    beat: Heartbeat
    public_key: str


_BEATING = select(agents.c.id, agents.c.public_key, agents.c.revoked_at, agents.c.last_heartbeat_seq).where(
    agents.c.id.in_(bindparam("agent_keys", expanding=True))
)
_BEATING_LOCKED = _BEATING.with_for_update(key_share=True)  # built once, as _AGENT_LOCKED


def store_heartbeats(conn: Connection, beats: List[CheckedBeat], now: datetime) -> List[Any]:
    """Record heartbeats in order.  Per heartbeat its answer, or the :class:`RequestRefused` for it
    (refused ones write nothing).  On PostgreSQL, when no node is twice in the batch, one statement
    writes those that pass (central/ingest/heartbeat_store.py) and only the rest go the general way; every
    other batch (SQLite, or a node twice) goes the general way whole."""
    written: Set[str] = set()
    if heartbeat_store.applies(conn, beats):
        written = heartbeat_store.write_admitted(conn, beats, now)
        if len(written) == len(beats):
            return [{"ok": True, "seq": b.beat.seq} for b in beats]
    rest = iter(_store_in_order(conn, [b for b in beats if b.beat.agent_id not in written], now))
    return [{"ok": True, "seq": b.beat.seq} if b.beat.agent_id in written else next(rest) for b in beats]


def _store_in_order(conn: Connection, beats: List[CheckedBeat], now: datetime) -> List[Any]:
    """One read of the heartbeats' agents' rows, each heartbeat checked in order, one statement for the writes."""
    if not beats:
        return []
    ids = sorted({b.beat.agent_id for b in beats})
    query = _BEATING_LOCKED if conn.dialect.name == "postgresql" else _BEATING
    rows = {row["id"]: row for row in conn.execute(query, {"agent_keys": ids}).mappings()}
    last_seq = {agent_id: int(row["last_heartbeat_seq"]) for agent_id, row in rows.items()}
    answers: List[Any] = []
    writes: List[Dict[str, Any]] = []
    for checked in beats:
        beat = checked.beat
        try:
            admitted(beat.agent_id, rows.get(beat.agent_id), checked.public_key)
            if beat.seq <= last_seq[beat.agent_id]:
                raise refuse(
                    409,
                    "replay",
                    f"heartbeat sequence {beat.seq} is not after {last_seq[beat.agent_id]}: a replayed heartbeat",
                )
        except RequestRefused as err:
            answers.append(err)
            continue
        last_seq[beat.agent_id] = beat.seq
        writes.append(
            {
                "agent_key": beat.agent_id,
                "seq": beat.seq,
                "at": now,
                "health": heartbeat_store.health(beat),
            }
        )
        answers.append({"ok": True, "seq": beat.seq})
    if writes:
        conn.execute(_BEAT, writes)
    return answers
