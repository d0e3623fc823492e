"""Sending spooled reports to the centre in order, in batches, removing only what it acknowledged."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import List, Optional

from agent.spool import Spool, Spooled
from agent.transport import Client, TransportError

MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_BATCH_REPORTS = 50
log = logging.getLogger("tillsyn.agent.delivery")


@dataclass
class Delivered:
    sent: int = 0
    rejected: int = 0
    pending: int = 0


def _first_batch(items: List[Spooled]) -> List[Spooled]:
    batch: List[Spooled] = []
    size = 0
    for item in items:
        if batch and (size + item.size > MAX_BATCH_BYTES or len(batch) >= MAX_BATCH_REPORTS):
            break
        batch.append(item)
        size += item.size
    return batch


def _refused_index(err: TransportError, batch_size: int) -> Optional[int]:
    """The report the centre refused for good, if it named one (4xx with an index)."""
    index = err.body.get("index")
    if err.retry or not isinstance(index, int) or not 0 <= index < batch_size:
        return None
    return index


def deliver(spool: Spool, client: Client) -> Delivered:
    """Send everything spooled, oldest first.

    A report the centre refuses for good (a 4xx naming it) is moved to ``spool/rejected``
    and logged, so one bad report cannot block the queue; any other failure raises
    :class:`TransportError` and everything stays spooled for the next try.
    """
    result = Delivered()
    while True:
        batch = _first_batch(spool.pending())
        if not batch:
            break
        records = [item.load() for item in batch]
        body = json.dumps({"reports": [{"body": r["body"], "signature": r["signature"]} for r in records]})
        try:
            answer = client.post("/api/v1/reports", body.encode("utf-8"))
        except TransportError as err:
            index = _refused_index(err, len(batch))
            if index is None:
                raise
            log.error("centre refused report %d for good, kept in spool/rejected: %s", batch[index].seq, err)
            spool.reject(batch[index], str(err))
            result.rejected += 1
            continue
        acknowledged = set(answer.get("acknowledged", []))
        done = [item for item, record in zip(batch, records) if record["report_id"] in acknowledged]
        if not done:
            raise TransportError("centre acknowledged none of the batch", retry=True)
        spool.remove(done)
        result.sent += len(done)
    result.pending = spool.depth()
    return result
