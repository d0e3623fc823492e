"""SQLite's WAL checkpoints, moved off the requests' path.

By default the commit that pushes the log past 1,000 pages copies it back into the database file
and syncs it, holding the write lock every other writer waits for: that alone set the 99th
percentile (figures in docs/benchmarks.md).  While a centre serves, its connections do not
checkpoint on commit; this thread does, every second, in PASSIVE mode (it waits for no reader and
no writer, and no writer waits for it).  When the last connection closes, SQLite checkpoints what
is left, as always.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional, Tuple

from sqlalchemy import Engine, event

from central.runtime.background import Background

log = logging.getLogger("tillsyn.central.checkpoint")
INTERVAL_S = 1.0
SLOW_S = 1.0


def _no_checkpoint_on_commit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


class WalCheckpointer(Background):
    """Checkpoints the WAL of a SQLite engine every ``interval`` seconds until stopped."""

    def __init__(self, engine: Engine, interval: float = INTERVAL_S) -> None:
        super().__init__("tillsyn-checkpoint", interval)
        self.engine = engine
        self.last: Optional[Tuple[int, int, int]] = None
        """(busy, frames in the log, frames checkpointed) of the last round, as SQLite reports them."""
        event.listen(engine, "connect", _no_checkpoint_on_commit)
        engine.dispose()  # connections opened before take the setting too: they are opened again

    def checkpoint(self) -> Tuple[int, int, int]:
        raw = self.engine.raw_connection()  # outside any transaction: the pragma is refused inside one
        try:
            cursor = raw.cursor()
            row = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            cursor.close()
        finally:
            raw.close()
        return int(row[0]), int(row[1]), int(row[2])

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.last = self.checkpoint()
            except Exception:
                log.exception("WAL checkpoint failed; retrying")
            took = time.monotonic() - started
            if took > SLOW_S:
                log.warning("WAL checkpoint took %.1f s (the disk is slow to sync)", took)
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        super().stop()
        event.remove(self.engine, "connect", _no_checkpoint_on_commit)
