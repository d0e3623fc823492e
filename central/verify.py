"""``tillsyn-central verify``: every node's chain, entry by entry, against the stored node record."""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

from sqlalchemy import Connection, Engine, select

from central.db.engine import read_tx
from central.db.schema import agents, reports
from central.ledger import Break, Entry, verify_chain
from central.retention import checkpoints


def ledger_entries(conn: Connection, agent_id: str) -> Iterator[Entry]:
    """A node's stored chain entries in order (streamed)."""
    rows = conn.execute(
        select(
            reports.c.agent_id,
            reports.c.chain_index,
            reports.c.prev_hash,
            reports.c.entry_hash,
            reports.c.body,
            reports.c.body_sha256,
            reports.c.signature,
            reports.c.report_id,
        )
        .where(reports.c.agent_id == agent_id)
        .order_by(reports.c.chain_index)
        .execution_options(yield_per=500)
    )
    for row in rows:
        yield Entry(*row)


def verify_store(engine: Engine, agent_id: Optional[str] = None) -> Tuple[int, List[Break]]:
    problems: List[Break] = []
    checked = 0
    with read_tx(engine) as conn:
        query = select(agents.c.id, agents.c.public_key, agents.c.ledger_length, agents.c.ledger_head)
        if agent_id:
            query = query.where(agents.c.id == agent_id)
        pruned = checkpoints(conn, [agent_id] if agent_id else None)
        for node in conn.execute(query).all():
            checked += 1
            start = pruned.get(node.id)  # retention removed the oldest reports: the chain goes on from there
            problems += verify_chain(
                node.id,
                node.public_key,
                ledger_entries(conn, node.id),
                node.ledger_length,
                node.ledger_head,
                *(() if start is None else (start.chain_index, start.entry_hash)),
            )
    return checked, problems
