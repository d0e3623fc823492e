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
import logging
import math
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import sequence_numbers
from agent.state import os_reason, read_state, write_json
from collectors.atomic_file import write_atomic
from evidence.model import Evidence
from evidence.signing import b64, sign
from evidence.wire import Privacy, Report, canonical

_NAME = re.compile(r"^(\d{20})\.json$")
_TEMP = re.compile(r"^\.\d{20}\.json\.")
_ASIDE = re.compile(r"^(\d{20})\.(?:reason\.)?json$")
_FIELDS = ("report_id", "body", "signature")
log = logging.getLogger("tillsyn.agent.spool")
STALE_TEMP_S = 3600.0
"""A temporary file this old is the remains of a write cut short by a crash."""
REJECTED = "rejected"
"""Where reports that will never be delivered are kept to be looked at (within the spool's bounds)."""


class SpoolDamaged(ValueError):
    """A spool file that is not a whole spooled report; the message names the file."""


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
        """The spooled record: report_id, seq, body (base64) and signature.

        :class:`SpoolDamaged` when the file is not such a record (cut short, overwritten, a disk
        error); FileNotFoundError when it is gone (delivered and removed by another process).
        """
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as err:
            raise SpoolDamaged(f"{self.path}: unreadable ({err})") from err
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in _FIELDS):
            raise SpoolDamaged(f"{self.path}: not a spooled report (needs {', '.join(_FIELDS)})")
        return data


class Spool:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._seq_file = self.dir / "seq.json"
        self._problems: List[str] = []
        self._problems_lock = threading.Lock()
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

    def _problem(self, text: str) -> None:
        """Log what the spool repaired or set aside, and keep it for the next heartbeat."""
        log.error("%s", text)
        with self._problems_lock:
            self._problems.append(text)

    def take_problems(self) -> List[str]:
        """What was repaired or set aside since the last call (for heartbeats and ``run --once``)."""
        with self._problems_lock:
            taken, self._problems = self._problems, []
        return taken

    def _next_seq(self) -> int:
        # Persisted before the report exists: a crash between the two skips a number (harmless)
        # but never reuses one (which the centre would refuse as a replay).
        highest = max([0] + [s.seq for s in self.pending()])
        seq, problems = sequence_numbers.advance(self._seq_file, "last", at_least=highest)
        for problem in problems:
            self._problem(f"spool: {problem}")
        return seq

    def add(
        self,
        key: Ed25519PrivateKey,
        agent_id: str,
        agent_version: str,
        collected_at: datetime,
        evidence: Sequence[Evidence],
        privacy: Optional[Privacy] = None,
    ) -> Spooled:
        """Sign and spool one report; OSError (e.g. a full disk) leaves nothing of it behind."""
        # One writer at a time (the daemon and ``run --once`` may share this spool): without the
        # lock both could take the same number and one report would replace the other.
        with open(self.dir / ".lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            seq = self._next_seq()
            report = Report(agent_id, uuid.uuid4().hex, seq, collected_at, agent_version, tuple(evidence), privacy)
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

    def _set_aside(self) -> List[Tuple[int, List[Path]]]:
        """The reports in ``rejected/`` with their reason files, oldest first."""
        groups: Dict[int, List[Path]] = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.dir / REJECTED):
                match = _ASIDE.match(entry.name)
                if match:
                    groups.setdefault(int(match.group(1)), []).append(Path(entry.path))
        return sorted(groups.items())

    def enforce_bounds(self, max_bytes: int, max_age_s: float, now: float) -> int:
        """Drop the oldest reports beyond the size or age limit; returns how many queued ones were dropped.

        The bounds cover ``rejected/`` too, and its reports go first (the centre will never take
        them; they are kept only to be looked at).  Every drop is counted in ``dropped.json``
        (and reported in heartbeats), never silently lost.
        """
        aside = [[(path, _stat(path)) for path in paths] for _, paths in self._set_aside()]
        queued = [(item, _stat(item.path)) for item in self.pending()]
        queued = [(item, st) for item, st in queued if st[1] != math.inf]  # not removed meanwhile
        total = sum(size for files in aside for _, (size, _) in files) + sum(size for _, (size, _) in queued)
        limit = now - max_age_s
        aside_victims: List[Path] = []
        aside_dropped = 0
        for files in aside:
            if total <= max_bytes and max(mtime for _, (_, mtime) in files) >= limit:
                continue
            aside_victims += [path for path, _ in files]
            aside_dropped += 1
            total -= sum(size for _, (size, _) in files)
        victims = []
        for item, (size, mtime) in queued:
            if mtime >= limit and total <= max_bytes:
                break
            victims.append(item)
            total -= size
        if not victims and not aside_dropped:
            return 0
        counts = self.dropped()
        if victims:
            counts["count"] = int(counts.get("count", 0)) + len(victims)
            counts["last_seq"] = victims[-1].seq
        if aside_dropped:
            counts["rejected"] = int(counts.get("rejected", 0)) + aside_dropped
        write_json(self.dir / "dropped.json", counts)  # counted before anything goes: never a silent drop
        for path in aside_victims:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.remove(victims)
        return len(victims)

    def dropped(self) -> Dict[str, Any]:
        """``count`` and ``last_seq`` of queued reports dropped at the bound, ``rejected`` of set-aside ones."""
        path = self.dir / "dropped.json"
        data, problem = read_state(path)
        if data is not None and not all(isinstance(data.get(k, 0), int) for k in ("count", "rejected")):
            problem = f"{path}: the counts are not numbers"
        if problem is None:
            return data or {"count": 0}
        # The counts are lost; start again at 0 (rewritten so that this is said once, not every turn).
        self._problem(f"spool: {problem}; the count of dropped reports starts again at 0")
        with contextlib.suppress(OSError):
            write_json(path, {"count": 0})
        return {"count": 0}

    def _aside_dir(self) -> Path:
        rejected = self.dir / REJECTED
        rejected.mkdir(exist_ok=True, mode=0o700)
        return rejected

    def reject(self, item: Spooled, reason: str) -> None:
        """Move a report the centre refused for good out of the queue, keeping it for inspection."""
        rejected = self._aside_dir()
        write_json(rejected / f"{item.seq:020d}.reason.json", {"reason": reason})
        os.replace(item.path, rejected / item.path.name)

    def set_aside_damaged(self, item: Spooled, damage: SpoolDamaged) -> None:
        """Move a spool file that cannot be loaded to ``rejected/`` with the reason, log and report it."""
        rejected = self._aside_dir()
        try:
            write_json(rejected / f"{item.seq:020d}.reason.json", {"reason": f"damaged in the spool: {damage}"})
        except OSError as err:  # no room for the reason (a full disk): move the file anyway, the log says why
            log.error("spool: could not write why %s was set aside (%s)", item.path.name, os_reason(err))
        try:
            os.replace(item.path, rejected / item.path.name)
        except FileNotFoundError:
            return  # gone meanwhile (another process set it aside or delivered it)
        self._problem(f"spool: {item.path.name} could not be loaded, moved to spool/rejected: {damage}")

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


def _stat(path: Path) -> Tuple[int, float]:
    """Size and modification time; (0, inf) for a file removed meanwhile (another process, or delivery)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return 0, math.inf
    return st.st_size, st.st_mtime
