"""PostgreSQL: a batch of heartbeats from distinct nodes written by one ``UPDATE ... FROM unnest``
whose conditions are the checks; what it did not write goes the general way (``_store_in_order``).

Why, and the timings: docs/benchmarks.md, "Why ingest is shaped as it is".
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, List, Set

from sqlalchemy import BigInteger, Connection, String, Text, bindparam, cast, column, func, update
from sqlalchemy.dialects.postgresql import ARRAY

from central.db import jsoncodec
from central.db.schema import agents
from evidence.wire import Heartbeat

if TYPE_CHECKING:
    from central.ingest.receive import CheckedBeat

_BEATS = (
    func.unnest(
        bindparam("agent_keys", type_=ARRAY(String)),
        bindparam("verified_keys", type_=ARRAY(String)),
        bindparam("seqs", type_=ARRAY(BigInteger)),
        bindparam("healths", type_=ARRAY(Text)),
    )
    .table_valued(
        column("agent_key", String), column("verified_key", String), column("seq", BigInteger), column("health", Text)
    )
    .render_derived(name="beats")
)
_WRITE_ADMITTED = (
    update(agents)
    .where(
        agents.c.id == _BEATS.c.agent_key,
        # the conditions of central.ingest.receive.admitted and of the replay check, in SQL
        agents.c.revoked_at.is_(None),
        agents.c.public_key == _BEATS.c.verified_key,
        agents.c.last_heartbeat_seq < _BEATS.c.seq,
    )
    .values(
        last_heartbeat_seq=_BEATS.c.seq,
        last_heartbeat_at=bindparam("at", type_=agents.c.last_heartbeat_at.type),
        health=cast(_BEATS.c.health, agents.c.health.type),
        silent=False,
        silent_since=None,
    )
    .returning(agents.c.id)
)


def health(beat: Heartbeat) -> Dict[str, Any]:
    """What an agent's row keeps of its heartbeat's own health (both paths store this)."""
    kept: Dict[str, Any] = {"spool_depth": beat.spool_depth, "last_errors": list(beat.last_errors)}
    if beat.privacy is not None:
        kept["privacy"] = beat.privacy.to_dict()  # judged for M13 (central/judging/own/anonymisation.py)
    return kept


def applies(conn: Connection, beats: List[CheckedBeat]) -> bool:
    """PostgreSQL, and no node twice in the batch (its heartbeats must then be checked in order)."""
    return bool(beats) and conn.dialect.name == "postgresql" and len({b.beat.agent_id for b in beats}) == len(beats)


def write_admitted(conn: Connection, beats: List[CheckedBeat], now: datetime) -> Set[str]:
    """Write every heartbeat that passes the checks; the ids of the agents written."""
    params = {
        "agent_keys": [b.beat.agent_id for b in beats],
        "verified_keys": [b.public_key for b in beats],
        "seqs": [b.beat.seq for b in beats],
        "healths": [jsoncodec.dumps(health(b.beat)) for b in beats],
        "at": now,
    }
    return set(conn.execute(_WRITE_ADMITTED, params).scalars())
