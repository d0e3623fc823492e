"""Receiving reports and heartbeats: verify, refuse replays, store exactly once, chain.

Order of checks, cheapest and most trust-establishing first: size, known and
unrevoked agent, request signature over the exact body, then parsing, then each
report's own signature and sequence.  Any refusal stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional

from sqlalchemy import Connection, RowMapping, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from central.config import Limits
from central.db.schema import agents, latest_evidence, reports
from central.errors import refuse
from central.ledger import body_hash, entry_hash
from evidence.signing import SignatureError, verify
from evidence.wire import Report, WireError, parse_heartbeat, parse_report

OnReport = Callable[[Connection, RowMapping, Report, datetime], None]
_COLLECTOR = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def authenticate(conn: Connection, agent_id: Optional[str], signature: Optional[str], body: bytes) -> RowMapping:
    """The agent row, once the request signature over ``body`` is checked."""
    if not agent_id or not signature:
        raise refuse(401, "unsigned", "missing X-Tillsyn-Agent or X-Tillsyn-Signature header")
    query = select(agents).where(agents.c.id == agent_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    agent = conn.execute(query).mappings().first()
    if agent is None:
        raise refuse(401, "unknown_agent", f"unknown agent {agent_id[:64]!r}", "enrol the node again")
    if agent["revoked_at"] is not None:
        raise refuse(403, "revoked", f"agent {agent_id} was revoked", "enrol the node again with a new token")
    try:
        verify(agent["public_key"], body, signature)
    except SignatureError as err:
        raise refuse(401, "bad_signature", f"request signature: {err}") from err
    return agent


@dataclass
class BatchResult:
    stored: List[str] = field(default_factory=list)
    duplicates: List[str] = field(default_factory=list)

    def body(self) -> Dict[str, Any]:
        return {"stored": self.stored, "duplicates": self.duplicates, "acknowledged": self.stored + self.duplicates}


def _items(body: bytes, limits: Limits) -> List[Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise refuse(400, "malformed", f"request body is not valid JSON: {err}") from err
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


def ingest_reports(
    conn: Connection,
    agent: RowMapping,
    body: bytes,
    limits: Limits,
    now: datetime,
    on_report: Optional[OnReport] = None,
) -> BatchResult:
    """Store every new report of a verified batch, in order; the caller's transaction commits."""
    result = BatchResult()
    last_seq = int(agent["last_report_seq"])
    length = int(agent["ledger_length"])
    head = str(agent["ledger_head"])
    newest: Optional[datetime] = None
    for index, item in enumerate(_items(body, limits)):
        raw, signature = _decode(item, index)
        where = f"reports[{index}]"
        try:
            verify(agent["public_key"], raw, signature)
        except SignatureError as err:
            raise refuse(401, "bad_signature", f"{where}: {err}", index=index) from err
        try:
            report = parse_report(raw, where)
        except WireError as err:
            raise refuse(400, "malformed", str(err), index=index) from err
        except OverflowError as err:  # a time such as 0001-01-01T00:00:00+05:00 has no UTC form
            raise refuse(400, "malformed", f"{where}: a time is out of range: {err}", index=index) from err
        if report.agent_id != agent["id"]:
            raise refuse(
                400, "malformed", f"{where}: report of agent {report.agent_id}, sent by {agent['id']}", index=index
            )
        _check_storable(report, where, index)
        digest = body_hash(raw)
        known = conn.execute(
            select(reports.c.body_sha256).where(
                reports.c.agent_id == agent["id"], reports.c.report_id == report.report_id
            )
        ).first()
        if known is not None:
            if known.body_sha256 != digest:
                raise refuse(
                    409, "conflict", f"{where}: report {report.report_id} was stored with other content", index=index
                )
            result.duplicates.append(report.report_id)
            continue
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
        conn.execute(
            reports.insert().values(
                agent_id=agent["id"],
                report_id=report.report_id,
                seq=report.seq,
                collected_at=report.collected_at,
                received_at=now,
                body=raw,
                signature=signature,
                body_sha256=digest,
                chain_index=length,
                prev_hash=head,
                entry_hash=new_head,
            )
        )
        head, last_seq = new_head, report.seq
        newest = report.collected_at
        _store_latest(conn, agent["id"], report)
        if on_report is not None:
            on_report(conn, agent, report, now)
        result.stored.append(report.report_id)
    if result.stored:
        conn.execute(
            update(agents)
            .where(agents.c.id == agent["id"])
            .values(last_report_seq=last_seq, last_report_at=newest, ledger_length=length, ledger_head=head)
        )
    return result


def _non_finite(value: Any, path: str) -> Optional[str]:
    """Where in ``value`` a NaN or infinite number sits (Python's JSON reads them; PostgreSQL does not)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{path}[{key!r}]" if isinstance(key, str) else f"{path}[{key}]")
        if found is not None:
            return found
    return None


def _check_storable(report: Report, where: str, index: int) -> None:
    """Refuse what one database would store and another reject, so both answer alike (400, not 500)."""
    for i, record in enumerate(report.evidence):
        at = f"{where}.evidence[{i}]"
        if not _COLLECTOR.fullmatch(record.collector):
            raise refuse(400, "malformed", f"{at}.collector: must be 1-64 of A-Z a-z 0-9 _ . -", index=index)
        bad = _non_finite(record.duration_ms, f"{at}.duration_ms") or _non_finite(
            dict(record.observed), f"{at}.observed"
        )
        if bad is not None:
            raise refuse(400, "malformed", f"{bad}: NaN and Infinity are not JSON numbers", index=index)


def _store_latest(conn: Connection, agent_id: str, report: Report) -> None:
    """The newest record per collector, in one statement (an upsert on both databases)."""
    rows = [
        {
            "agent_id": agent_id,
            "collector": record.collector,
            "report_id": report.report_id,
            "collected_at": record.collected_at,
            "status": record.status.value,
            "record": record.to_dict(),
        }
        for record in report.evidence
    ]
    if not rows:
        return
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    statement = insert(latest_evidence)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[latest_evidence.c.agent_id, latest_evidence.c.collector],
            set_={k: statement.excluded[k] for k in ("report_id", "collected_at", "status", "record")},
        ),
        rows,
    )


def ingest_heartbeat(
    conn: Connection, agent: RowMapping, body: bytes, limits: Limits, now: datetime
) -> Dict[str, Any]:
    try:
        beat = parse_heartbeat(body)
    except WireError as err:
        raise refuse(400, "malformed", str(err)) from err
    except OverflowError as err:
        raise refuse(400, "malformed", f"heartbeat: a time is out of range: {err}") from err
    if beat.agent_id != agent["id"]:
        raise refuse(400, "malformed", f"heartbeat of agent {beat.agent_id}, sent by {agent['id']}")
    if beat.seq <= int(agent["last_heartbeat_seq"]):
        raise refuse(
            409,
            "replay",
            f"heartbeat sequence {beat.seq} is not after {agent['last_heartbeat_seq']}: a replayed heartbeat",
        )
    if beat.sent_at < now - timedelta(seconds=limits.heartbeat_max_age_s):
        raise refuse(409, "replay", "heartbeat is too old to be current: a replay, or the node's clock is wrong")
    if beat.sent_at > now + timedelta(seconds=limits.clock_skew_s):
        raise refuse(400, "clock", "heartbeat sent_at is in the future; check the node's clock (NTP)")
    conn.execute(
        update(agents)
        .where(agents.c.id == agent["id"])
        .values(
            last_heartbeat_seq=beat.seq,
            last_heartbeat_at=now,
            health={"spool_depth": beat.spool_depth, "last_errors": list(beat.last_errors)},
            silent=False,
            silent_since=None,
        )
    )
    return {"ok": True, "seq": beat.seq}
