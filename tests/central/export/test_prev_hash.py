"""The export lists each cited report's ``prev_hash``, which the ledger no longer stores (migration
0018), on SQLite and PostgreSQL: the hash of the entry before it, of the retention checkpoint after
pruning, or null when that entry was removed behind retention's back; the offline check of the
listed entries passes on the first two and names the third."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List

from sqlalchemy import select, update

from central.db.engine import read_tx, write_tx
from central.db.schema import reports
from central.export.chain import Listed, check_entries
from central.export.ledger_refs import cited_reports
from central.ingest.ledger import Entry
from central.ingest.ledger_check import verify_store
from central.retention.sweep import checkpoints, run
from central.runtime.service import Centre
from tests.central.conftest import Node
from tests.central.retention.helpers import SETTINGS

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _listed(agent_id: str, cited: List[Dict[str, Any]]) -> List[Listed]:
    """The cited reports as the export's offline check reads them (central/export/offline.py)."""
    return [
        Listed(
            r["prev_hash"],
            Entry(
                agent_id,
                r["chain_index"],
                r["entry_hash"],
                base64.b64decode(r["body"]),
                r["body_sha256"],
                r["signature"],
                r["report_id"],
            ),
        )
        for r in cited
    ]


def test_each_cited_report_lists_the_hash_of_the_entry_before_it(centre: Centre, node: Node) -> None:
    for _ in range(6):
        assert node.send(node.report()).status_code == 200
    with write_tx(centre.engine) as conn:  # entries 1-2 go behind a retention checkpoint
        conn.execute(
            update(reports)
            .where(reports.c.agent_id == node.agent_id, reports.c.chain_index <= 2)
            .values(received_at=NOW - timedelta(days=500))
        )
        assert run(conn, SETTINGS, NOW).reports == 2
    with read_tx(centre.engine) as conn:
        rows = conn.execute(
            select(reports.c.chain_index, reports.c.report_id, reports.c.entry_hash).where(
                reports.c.agent_id == node.agent_id
            )
        ).all()
        ids = {r.chain_index: r.report_id for r in rows}
        hashes = {r.chain_index: r.entry_hash for r in rows}
        mark = checkpoints(conn)[node.agent_id]
        cited = cited_reports(conn, node.agent_id, [ids[3], ids[6]], [5], True, mark)
    assert [(r["chain_index"], r["prev_hash"]) for r in cited] == [(3, mark.entry_hash), (5, hashes[4]), (6, hashes[5])]
    assert check_entries(node.agent_id, node.public_key, _listed(node.agent_id, cited)) == []

    with write_tx(centre.engine) as conn:  # entry 5 removed behind retention's back
        conn.execute(reports.delete().where(reports.c.agent_id == node.agent_id, reports.c.chain_index == 5))
    with read_tx(centre.engine) as conn:
        cited = cited_reports(conn, node.agent_id, [ids[6]], [], True, checkpoints(conn)[node.agent_id])
    assert [(r["chain_index"], r["prev_hash"]) for r in cited] == [(6, None)]
    problems = check_entries(node.agent_id, node.public_key, _listed(node.agent_id, cited))
    assert [(p.chain_index, p.problem) for p in problems] == [
        (
            6,
            "prev_hash is null: the ledger had no entry 5 before it when the export was made, nor a retention "
            "checkpoint in its place (removed); its entry hash cannot be recomputed",
        )
    ]
    assert [(p.chain_index, p.problem.split(":")[0]) for p in verify_store(centre.engine, retention=SETTINGS)[1]] == [
        (6, "expected entry 5, found 6 (removed or reordered)"),
        (6, "entry hash does not match its contents and entry 4's hash"),
        (None, "chain has 3 entries after checkpoint entry 2, the node record says 6"),
    ]
