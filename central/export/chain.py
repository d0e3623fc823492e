"""Checking the ledger entries an export carries, which need not be contiguous.

An export carries only the reports it cites: :func:`check_entries` checks each entry on
its own and every link between neighbours that are both present.  A whole chain (from
genesis or from a retention checkpoint) is :func:`central.ingest.ledger.verify_chain`.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from central.ingest.ledger import GENESIS, Break, Entry, check_entry


def check_entries(agent_id: str, public_key: Optional[str], entries: Sequence[Entry]) -> List[Break]:
    """Entries in chain order, possibly with gaps: each on its own, and links where neighbours meet."""
    problems: List[Break] = []
    before: Optional[Entry] = None
    for entry in entries:
        problems += check_entry(agent_id, public_key, entry)
        if before is not None and before.chain_index + 1 == entry.chain_index and entry.prev_hash != before.entry_hash:
            problems.append(
                Break(
                    agent_id,
                    entry.chain_index,
                    entry.report_id,
                    "previous-hash link does not match the entry before it",
                )
            )
        if entry.chain_index == 1 and entry.prev_hash != GENESIS:
            problems.append(Break(agent_id, 1, entry.report_id, "the first entry does not start from genesis"))
        before = entry
    return problems
