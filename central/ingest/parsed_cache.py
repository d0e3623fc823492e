"""Reports ingest has just parsed, kept for the evaluator so it need not parse them again; one is
used only when the row judged holds the very body it was parsed from (same id and SHA-256).

Why, and what it saved: docs/benchmarks.md, "Why ingest is shaped as it is".
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable, Optional, Tuple

from evidence.wire import Report

KEEP = 512
"""Reports kept at most: beyond a backlog this deep the oldest are parsed again when their turn comes."""
KEEP_BYTES = 8 * 1024 * 1024
"""Their bodies' bytes at most: a parsed report takes about five times its body in memory, so the
kept reports stay under about 40 MB however large each one is."""


class ParsedReports:
    def __init__(self, keep: int = KEEP, keep_bytes: int = KEEP_BYTES) -> None:
        self.keep = keep
        self.keep_bytes = keep_bytes
        self._lock = threading.Lock()
        self._kept: OrderedDict[int, Tuple[str, Report, int]] = OrderedDict()
        self._bytes = 0

    def put(self, stored: Iterable[Tuple[int, str, Report, int]]) -> None:
        """(row id, body SHA-256, parsed report, body size) of stored rows."""
        with self._lock:
            for pk, digest, report, size in stored:
                old = self._kept.pop(pk, None)
                self._bytes += size - (old[2] if old is not None else 0)
                self._kept[pk] = (digest, report, size)
            while self._kept and (len(self._kept) > self.keep or self._bytes > self.keep_bytes):
                self._bytes -= self._kept.popitem(last=False)[1][2]

    def take(self, pk: int, digest: str) -> Optional[Report]:
        """The report parsed from row ``pk`` if its body had this digest, else None; taken only once."""
        with self._lock:
            kept = self._kept.pop(pk, None)
            if kept is not None:
                self._bytes -= kept[2]
        if kept is None or kept[0] != digest:
            return None
        return kept[1]

    def __len__(self) -> int:
        return len(self._kept)
