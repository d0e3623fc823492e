"""Chain checks that allow a start other than genesis: after retention, and for export segments.

:func:`verify_from` is :func:`central.ledger.verify_chain` starting at a checkpoint (the
last pruned entry).  :func:`check_entries` checks entries that need not be contiguous
(an export carries only the reports it cites): each entry on its own, and every link
between neighbours that are both present.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence

from central.ledger import GENESIS, Break, Entry, body_hash, entry_hash
from evidence.signing import SignatureError, verify


def check_entry(agent_id: str, public_key: Optional[str], entry: Entry) -> List[Break]:
    """One entry's own consistency: body hash, entry hash, and the signature when a key is given."""
    where = (agent_id, entry.chain_index, entry.report_id)
    problems: List[Break] = []
    if body_hash(entry.body) != entry.body_sha256:
        problems.append(Break(*where, "body does not match its recorded hash (changed)"))
    recomputed = entry_hash(entry.prev_hash, agent_id, entry.chain_index, entry.body_sha256, entry.signature)
    if recomputed != entry.entry_hash:
        problems.append(Break(*where, "entry hash does not match its contents (changed)"))
    if public_key is not None:
        try:
            verify(public_key, entry.body, entry.signature)
        except SignatureError as err:
            problems.append(Break(*where, f"signature: {err}"))
    return problems


def verify_from(
    agent_id: str,
    public_key: str,
    entries: Iterable[Entry],
    start_index: int = 0,
    start_hash: str = GENESIS,
    expected_length: Optional[int] = None,
    expected_head: Optional[str] = None,
) -> List[Break]:
    """Every problem in a node's chain after entry ``start_index`` (whose hash is ``start_hash``)."""
    problems: List[Break] = []
    prev, expected, last = start_hash, start_index + 1, start_index
    for entry in entries:
        where = (agent_id, entry.chain_index, entry.report_id)
        if entry.chain_index != expected:
            problems.append(
                Break(*where, f"expected entry {expected}, found {entry.chain_index} (removed or reordered)")
            )
        if entry.prev_hash != prev:
            problems.append(Break(*where, "previous-hash link does not match the entry before it"))
        problems += check_entry(agent_id, public_key, entry)
        prev, last, expected = entry.entry_hash, entry.chain_index, expected + 1
    if expected_length is not None and expected - 1 != expected_length:
        problems.append(
            Break(agent_id, None, None, f"chain ends at entry {expected - 1}, the node record says {expected_length}")
        )
    elif expected_head is not None and last == expected_length and prev != expected_head:
        problems.append(Break(agent_id, None, None, "last entry is not the recorded head"))
    return problems


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
