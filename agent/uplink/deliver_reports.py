"""Sending spooled reports to the centre in order, in batches, removing only what it acknowledged."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

from agent.errors import TransportError
from agent.spool import Spool, SpoolDamaged, Spooled
from agent.uplink.signed_http import Client

MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_BATCH_REPORTS = 50
log = logging.getLogger("tillsyn.agent.delivery")


@dataclass
class Delivered:
    sent: int = 0
    rejected: int = 0
    """Refused by the centre for good (moved to spool/rejected)."""
    damaged: int = 0
    """Spool files that could not be loaded (moved to spool/rejected)."""
    pending: int = 0
    batch_limit: int = MAX_BATCH_REPORTS
    """How many reports to send at once from now on (lowered when the centre says too large)."""


def _first_batch(items: List[Spooled], max_reports: int = MAX_BATCH_REPORTS) -> List[Spooled]:
    batch: List[Spooled] = []
    size = 0
    for item in items:
        if batch and (size + item.size > MAX_BATCH_BYTES or len(batch) >= max_reports):
            break
        batch.append(item)
        size += item.size
    return batch


def _load(spool: Spool, item: Spooled, result: Delivered) -> Optional[Dict[str, Any]]:
    """The spooled record, or None when the file was damaged (and is now set aside)."""
    try:
        return item.load()
    except SpoolDamaged as damage:
        spool.set_aside_damaged(item, damage)
        result.damaged += 1
        return None


def _load_batch(spool: Spool, limit: int, result: Delivered) -> Tuple[List[Spooled], List[Dict[str, Any]]]:
    """The next batch and its records; damaged files are set aside, vanished ones skipped."""
    vanished = 0
    while True:
        try:
            batch = _first_batch(spool.pending(), limit)
            records = [_load(spool, item, result) for item in batch]
        except FileNotFoundError:
            # Removed meanwhile (delivered by ``run --once`` beside the daemon): look again, a
            # few times (a name that is listed but never there, a dangling link, is an error).
            vanished += 1
            if vanished > 3:
                raise
            continue
        loaded = [r for r in records if r is not None]
        if len(loaded) == len(batch):
            return batch, loaded


def _refused_index(err: TransportError, batch_size: int) -> Optional[int]:
    """The report the centre refused for good, if it named one (4xx with an index)."""
    index = err.body.get("index")
    if err.retry or not isinstance(index, int) or not 0 <= index < batch_size:
        return None
    return index


def _acknowledged(answer: Dict[str, Any]) -> Set[str]:
    ids = answer.get("acknowledged")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise TransportError("centre answered without a list of acknowledged report ids", retry=True)
    return set(ids)


def deliver(
    spool: Spool, client: Client, max_batches: Optional[int] = None, batch_limit: int = MAX_BATCH_REPORTS
) -> Delivered:
    """Send everything spooled, oldest first.

    A report the centre refuses for good (a 4xx naming it) is moved to ``spool/rejected``
    and logged, so one bad report cannot block the queue; so is a spool file that cannot
    be loaded.  Any other failure raises :class:`TransportError` and everything stays
    spooled for the next try.
    """
    result = Delivered(batch_limit=batch_limit)
    batches = 0
    while max_batches is None or batches < max_batches:
        batch, records = _load_batch(spool, result.batch_limit, result)
        if not batch:
            break
        body = json.dumps({"reports": [{"body": r["body"], "signature": r["signature"]} for r in records]})
        try:
            answer = client.post("/api/v1/reports", body.encode("utf-8"))
        except TransportError as err:
            index = _refused_index(err, len(batch))
            if index is None and err.status == 413 and len(batch) > 1:
                # Too large for this centre's limits: try smaller batches (the agent cannot know
                # the centre's limits); a single report still too large is set aside below.
                result.batch_limit = max(1, len(batch) // 2)
                log.warning(
                    "centre refused %d reports at once as too large; sending %d at a time",
                    len(batch),
                    result.batch_limit,
                )
                continue
            if index is None and err.status == 413:
                index = 0
            if index is None:
                raise
            batches += 1
            log.error("centre refused report %d for good, kept in spool/rejected: %s", batch[index].seq, err)
            spool.reject(batch[index], str(err))
            result.rejected += 1
            continue
        acknowledged = _acknowledged(answer)
        done = [item for item, record in zip(batch, records) if record["report_id"] in acknowledged]
        if not done:
            raise TransportError("centre acknowledged none of the batch", retry=True)
        spool.remove(done)
        result.sent += len(done)
        batches += 1
    result.pending = spool.depth()
    return result
