"""PostgreSQL: a batch of heartbeats from distinct nodes written by one statement.

The general path (``_store_in_order`` in central/ingest/receive.py) reads the batch's agents, checks each
heartbeat in order, then updates the rows with an executemany, which psycopg's pipeline runs as a
Python round of work per row.  Almost every heartbeat passes, so here the checks are conditions of
a single ``UPDATE ... FROM unnest(...)``: a row is written only where the node is known, not
revoked, holds the key the request was signed with, and the sequence is new.  What the statement
did not write is handed back to the general path, which reads those rows and refuses each with its
reason, exactly as before.  In the centre the group writer has locked the batch's rows
(``lock_agents``) before either runs, so no other process changes them in between.

Timed in one process against the local PostgreSQL 15 (200 agents, each batch in its own
transaction after the writer's lock, the 2-core machine of docs/benchmarks.md): a batch of 16
took 1.38 ms, 0.67 ms of it the process's CPU, instead of 1.89 and 1.01 ms; of 32, 1.71 and 0.83
instead of 2.30 and 1.30.  In ``bench.ingest_load`` the gain is small and partly moved to
PostgreSQL's side (docs/benchmarks.md): the centre's process, the one that runs out first, pays less.
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
    return {"spool_depth": beat.spool_depth, "last_errors": list(beat.last_errors)}


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
