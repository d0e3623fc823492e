"""Reports ingest has just parsed, kept for the evaluator so it need not parse them again.

Ingest parses every report before storing it; the evaluator used to read the stored body
back and parse it a second time (JSON, then every record rebuilt and checked).  Once a
batch is committed its parsed reports are kept here by the stored row's id and the
SHA-256 of the body, and the evaluator takes them instead of parsing: it uses one only
when the row it judges holds the very body it was parsed from, so whatever it cannot
find (another centre process stored the report, this one restarted, or more reports
wait than are kept) it parses from the stored body as before.  Only committed rows are
put here, so an id given back by a rolled-back transaction is never found.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable, Optional, Tuple

from evidence.wire import Report

KEEP = 512
"""Reports kept at most (each a few tens of kB of Python objects): beyond a backlog this deep the
oldest are parsed again when their turn comes."""


class ParsedReports:
    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._kept: OrderedDict[int, Tuple[str, Report]] = OrderedDict()

    def put(self, stored: Iterable[Tuple[int, str, Report]]) -> None:
        """(row id, body SHA-256, parsed report) of committed rows."""
        with self._lock:
            for pk, digest, report in stored:
                self._kept[pk] = (digest, report)
            while len(self._kept) > self.keep:
                self._kept.popitem(last=False)

    def take(self, pk: int, digest: str) -> Optional[Report]:
        """The report parsed from row ``pk`` if its body had this digest, else None; taken only once."""
        with self._lock:
            kept = self._kept.pop(pk, None)
        if kept is None or kept[0] != digest:
            return None
        return kept[1]

    def __len__(self) -> int:
        return len(self._kept)
