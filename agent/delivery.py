"""Sending spooled reports to the centre in order, in batches, removing only what it acknowledged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import List

from agent.spool import Spool, Spooled
from agent.transport import Client

MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_BATCH_REPORTS = 50


@dataclass
class Delivered:
    sent: int = 0
    pending: int = 0


def _batches(items: List[Spooled]) -> List[List[Spooled]]:
    batches: List[List[Spooled]] = []
    current: List[Spooled] = []
    size = 0
    for item in items:
        if current and (size + item.size > MAX_BATCH_BYTES or len(current) >= MAX_BATCH_REPORTS):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item.size
    if current:
        batches.append(current)
    return batches


def deliver(spool: Spool, client: Client) -> Delivered:
    """Send everything spooled, oldest first; raises TransportError at the first failure."""
    result = Delivered()
    for batch in _batches(spool.pending()):
        records = [item.load() for item in batch]
        body = json.dumps({"reports": [{"body": r["body"], "signature": r["signature"]} for r in records]})
        answer = client.post("/api/v1/reports", body.encode("utf-8"))
        acknowledged = set(answer.get("acknowledged", []))
        done = [item for item, record in zip(batch, records) if record["report_id"] in acknowledged]
        spool.remove(done)
        result.sent += len(done)
    result.pending = len(spool.pending())
    return result
