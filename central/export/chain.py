"""Checking the ledger entries an export carries, which need not be contiguous.

An export carries only the reports it cites, each with the previous entry's hash (``prev_hash``;
the ledger derives it, central/export/ledger_refs.py): :func:`check_entries` checks each entry on
its own and every link between neighbours that are both present.  A whole chain (from genesis or
from a retention checkpoint) is :func:`central.ingest.ledger.verify_chain`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from central.ingest.ledger import GENESIS, Break, Entry, check_entry


@dataclass(frozen=True)
class Listed:
    """A ledger entry as an export lists it: with the hash of the entry before it (``None`` when the
    ledger had no entry before it to take it from)."""

    prev_hash: Optional[str]
    entry: Entry


def check_entries(agent_id: str, public_key: Optional[str], listed: Sequence[Listed]) -> List[Break]:
    """Entries in chain order, possibly with gaps: each on its own, and links where neighbours meet."""
    problems: List[Break] = []
    before: Optional[Entry] = None
    for prev_hash, entry in ((item.prev_hash, item.entry) for item in listed):
        problems += check_entry(agent_id, public_key, entry, prev_hash)
        if prev_hash is None:
            problem = (
                f"prev_hash is null: the ledger had no entry {entry.chain_index - 1} before it when the export "
                "was made, nor a retention checkpoint in its place (removed); its entry hash cannot be recomputed"
            )
            problems.append(Break(agent_id, entry.chain_index, entry.report_id, problem))
            before = entry
            continue
        if before is not None and before.chain_index + 1 == entry.chain_index and prev_hash != before.entry_hash:
            problems.append(
                Break(
                    agent_id,
                    entry.chain_index,
                    entry.report_id,
                    "previous-hash link does not match the entry before it",
                )
            )
        if entry.chain_index == 1 and prev_hash != GENESIS:
            problems.append(Break(agent_id, 1, entry.report_id, "the first entry does not start from genesis"))
        before = entry
    return problems
