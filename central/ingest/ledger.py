"""The per-node hash chain over stored reports, and its verification.

Entry ``n`` of a node's chain commits to entry ``n-1``'s hash, the SHA-256 of the
exact signed body, and the signature.  Changing, removing or reordering any
stored report breaks every later hash; a body that no longer matches its
signature is caught by checking the signature with the node's public key.

The ledger stores each entry's own hash, not the previous one's (since migration 0018): an entry's
hash is recomputed from the hash of the entry stored before it (of the retention checkpoint, or
genesis), so a removed, inserted, reordered or changed entry fails that recomputation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, List, Optional

from evidence.signing import SignatureError, verify

GENESIS = "0" * 64


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def entry_hash(prev_hash: str, agent_id: str, index: int, body_sha256: str, signature: str) -> str:
    material = "\n".join([prev_hash, agent_id, str(index), body_sha256, signature]).encode("utf-8")
    return hashlib.sha256(material).hexdigest()


@dataclass(frozen=True)
class Entry:
    agent_id: str
    chain_index: int
    entry_hash: str
    body: bytes
    body_sha256: str
    signature: str
    report_id: str
    erased_sha256: Optional[str] = None
    """Set when the body was scrubbed on an erasure request (M08): the scrubbed body's hash."""
    erased: Optional[str] = None
    """How it was erased, in words: 'erased on <date> by request <reference>'."""
    unreadable: Optional[str] = None
    """Why the stored body could not be read back (a damaged skeleton, a missing piece of evidence)."""


@dataclass(frozen=True)
class Break:
    agent_id: str
    chain_index: Optional[int]
    report_id: Optional[str]
    problem: str


def check_entry(
    agent_id: str,
    public_key: Optional[str],
    entry: Entry,
    prev_hash: Optional[str],
    after: str = "its prev_hash",
    cause: str = "changed",
) -> List[Break]:
    """One entry's own consistency: body hash, entry hash (recomputed from ``prev_hash``, which
    ``after`` names in the sentence; not when it is unknown), and the signature when a key is given."""
    where = (agent_id, entry.chain_index, entry.report_id)
    problems: List[Break] = []
    if entry.unreadable is not None:
        problems.append(Break(*where, f"body cannot be read back: {entry.unreadable} (changed)"))
        public_key = None
    elif entry.erased_sha256 is not None:
        # the original body and its signature are gone by request; the chain still commits to the
        # original's hash (body_sha256), and the scrubbed body must be the one the erasure left
        if body_hash(entry.body) != entry.erased_sha256:
            problems.append(Break(*where, "erased body does not match the hash its erasure recorded (changed)"))
        public_key = None
    elif body_hash(entry.body) != entry.body_sha256:
        problems.append(Break(*where, "body does not match its recorded hash (changed)"))
    recomputed = (
        None
        if prev_hash is None
        else entry_hash(prev_hash, agent_id, entry.chain_index, entry.body_sha256, entry.signature)
    )
    if recomputed is not None and recomputed != entry.entry_hash:
        problem = (
            f"entry hash does not match its contents and {after}: stored {entry.entry_hash}, "
            f"recomputed {recomputed} ({cause})"
        )
        problems.append(Break(*where, problem))
    if public_key is not None:
        try:
            verify(public_key, entry.body, entry.signature)
        except SignatureError as err:
            problems.append(Break(*where, f"signature: {err}"))
    return problems


def verify_chain(
    agent_id: str,
    public_key: str,
    entries: Iterable[Entry],
    expected_length: Optional[int] = None,
    expected_head: Optional[str] = None,
    start_index: int = 0,
    start_hash: str = GENESIS,
) -> List[Break]:
    """Every problem in one node's chain after entry ``start_index`` (whose hash is ``start_hash``:
    genesis, or the checkpoint retention left); an empty list means it is intact.

    Each entry's hash is recomputed from the stored hash of the entry before it in the walk (the
    previous hash is not stored): the entry that follows a removed, inserted or moved entry, or one
    whose hash was rewritten, fails it."""
    problems: List[Break] = []
    prev, last_index, count = start_hash, start_index, 0
    chained = f"checkpoint entry {start_index}'s hash" if start_index else "the genesis hash"
    for count, entry in enumerate(entries, start=1):
        where = (agent_id, entry.chain_index, entry.report_id)
        if entry.chain_index != start_index + count:
            problems.append(
                Break(*where, f"expected entry {start_index + count}, found {entry.chain_index} (removed or reordered)")
            )
        problems += check_entry(
            agent_id,
            public_key,
            entry,
            prev,
            chained,
            "this entry changed, or the entry before it changed, removed, inserted or moved",
        )
        prev, last_index = entry.entry_hash, entry.chain_index
        chained = f"entry {last_index}'s hash"
    cut = expected_length is not None and last_index < expected_length
    if expected_length is not None and start_index + count != expected_length:
        after = f" after checkpoint entry {start_index}" if start_index else ""
        problem = f"chain has {count} entries{after}, the node record says {expected_length}"
        if cut:
            first = last_index + 1
            missing = f"entry {first}" if first == expected_length else f"entries {first}-{expected_length}"
            problem += f" ({missing} removed at the end)"
        problems.append(Break(agent_id, None, None, problem))
    elif expected_head is not None and not cut and prev != expected_head:
        problems.append(Break(agent_id, None, None, "last entry is not the recorded head (entries removed at the end)"))
    return problems
