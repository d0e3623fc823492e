"""Reports ingest has just parsed, kept for the evaluator so it need not parse them again.

Ingest parses every report before storing it; the evaluator used to read the stored body
back and parse it a second time (JSON, then every record rebuilt and checked).  As a
batch is stored its parsed reports are kept here by the stored row's id and the
SHA-256 of the body, and the evaluator takes them instead of parsing: it uses one only
when the row it judges holds the very body it was parsed from, so whatever it cannot
find (another centre process stored the report, this one restarted, or more reports
wait than are kept) it parses from the stored body as before.  They are put here in the
storing transaction, before its commit, so the evaluator cannot see a row before its
report; an id a rolled-back transaction gives back to a later row holds another body
(the digest differs) or the same one (and the same report), and is pushed out in time.
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
