"""The durable spool: every report is on disk, signed, before it is sent.

One file per report, named by its sequence number, written atomically (temp file,
fsync, rename), removed only after the centre acknowledged it.  A crash at any
moment leaves each report either fully spooled or not spooled at all; resending
an acknowledged-but-not-yet-removed report is harmless because the centre stores
by report id exactly once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.state import read_json, write_atomic, write_json
from evidence.model import Evidence
from evidence.signing import b64, sign
from evidence.wire import Report, canonical

_NAME = re.compile(r"^(\d{20})\.json$")
_TEMP = re.compile(r"^\.\d{20}\.json\.")
STALE_TEMP_S = 3600.0
"""A temporary file this old is the remains of a write cut short by a crash."""


@dataclass(frozen=True)
class Spooled:
    seq: int
    report_id: str
    path: Path

    @property
    def size(self) -> int:
        """Bytes on disk (a stat, so asked only where needed: batching and the size bound)."""
        return self.path.stat().st_size

    def load(self) -> Dict[str, Any]:
        """The spooled record: report_id, seq, body (base64) and signature."""
        data: Dict[str, Any] = json.loads(self.path.read_bytes())
        return data


class Spool:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._seq_file = self.dir / "seq.json"
        self._clear_stale_temps()

    def _clear_stale_temps(self) -> None:
        """Remove what a crash mid-write left behind (``write_atomic``'s temporary files).

        Only old ones: another process (``run --once`` beside the daemon) may be writing one now.
        """
        limit = time.time() - STALE_TEMP_S
        for entry in os.scandir(self.dir):
            if _TEMP.match(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < limit:
                        os.unlink(entry.path)

    def _next_seq(self) -> int:
        stored = read_json(self._seq_file) or {}
        highest = max([int(stored.get("last", 0))] + [s.seq for s in self.pending()])
        seq = highest + 1
        # Persist the sequence before the report exists: a crash between the two skips a
        # number (harmless) but never reuses one (which the centre would refuse as a replay).
        write_json(self._seq_file, {"last": seq})
        return seq

    def add(
        self,
        key: Ed25519PrivateKey,
        agent_id: str,
        agent_version: str,
        collected_at: datetime,
        evidence: Sequence[Evidence],
    ) -> Spooled:
        # One writer at a time (the daemon and ``run --once`` may share this spool): without the
        # lock both could take the same number and one report would replace the other.
        with open(self.dir / ".lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            seq = self._next_seq()
            report = Report(agent_id, uuid.uuid4().hex, seq, collected_at, agent_version, tuple(evidence))
            body = canonical(report.to_dict())
            record = {"report_id": report.report_id, "seq": seq, "body": b64(body), "signature": sign(key, body)}
            path = self.dir / f"{seq:020d}.json"
            data = json.dumps(record).encode("utf-8")
            write_atomic(path, data)
        return Spooled(seq, report.report_id, path)

    def pending(self) -> List[Spooled]:
        """Spooled reports, oldest first."""
        out = []
        for entry in os.scandir(self.dir):
            match = _NAME.match(entry.name)
            if match:
                out.append(Spooled(int(match.group(1)), "", Path(entry.path)))
        return sorted(out, key=lambda s: s.seq)

    def enforce_bounds(self, max_bytes: int, max_age_s: float, now: float) -> int:
        """Drop the oldest reports beyond the size or age limit; returns how many were dropped.

        Dropped reports are counted in ``dropped.json`` (and reported in heartbeats), never
        silently lost.
        """
        items = self.pending()
        total = sum(i.size for i in items)
        victims = []
        for item in items:
            too_old = now - item.path.stat().st_mtime > max_age_s
            if not too_old and total <= max_bytes:
                break
            victims.append(item)
            total -= item.size
        if victims:
            counts = self.dropped()
            counts["count"] = int(counts.get("count", 0)) + len(victims)
            counts["last_seq"] = victims[-1].seq
            write_json(self.dir / "dropped.json", counts)
            self.remove(victims)
        return len(victims)

    def dropped(self) -> Dict[str, Any]:
        return read_json(self.dir / "dropped.json") or {"count": 0}

    def reject(self, item: Spooled, reason: str) -> None:
        """Move a report the centre refused for good out of the queue, keeping it for inspection."""
        rejected = self.dir / "rejected"
        rejected.mkdir(exist_ok=True, mode=0o700)
        write_json(rejected / f"{item.seq:020d}.reason.json", {"reason": reason})
        os.replace(item.path, rejected / item.path.name)

    def depth(self) -> int:
        """How many reports wait (names only: no stat per file, cheap with thousands)."""
        return sum(1 for entry in os.scandir(self.dir) if _NAME.match(entry.name))

    def remove(self, items: Iterable[Spooled]) -> None:
        for item in items:
            with contextlib.suppress(FileNotFoundError):
                item.path.unlink()
        dir_fd = os.open(str(self.dir), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
