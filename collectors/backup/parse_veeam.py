"""Pure parsing of ``veeamconfig session list`` (Veeam Agent for Linux).

The output is a table: a header line ``Job name  Type  ID  State  Started at  Finished at``, one
line per session (the ID in braces, times ``YYYY-MM-DD HH:MM`` in the node's local zone, the finish
time empty while running) and a closing ``Total amount: N`` line (Veeam Agent for Linux user guide,
"Viewing Session List").  Job names may contain spaces, so a row is anchored on the braced ID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import List, Optional

from collectors.backup.parse_times import parse_naive

_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?"
_ROW = re.compile(
    rf"^(?P<job>.+?)\s+(?P<type>\S+)\s+\{{(?P<id>[0-9A-Fa-f-]+)\}}\s+(?P<state>\S+)"
    rf"\s+(?P<start>{_TIME})(?:\s+(?P<end>{_TIME}))?\s*$"
)
# States after which a restore point exists: Warning is a finished backup with warnings.
SUCCESS_STATES = frozenset({"Success", "Warning"})


@dataclass(frozen=True)
class VeeamSession:
    """One row of the session list."""

    job: str
    type: str
    id: str
    state: str
    started_at: datetime
    finished_at: Optional[datetime]


def parse_session_list(text: str, zone: Optional[tzinfo] = None) -> List[VeeamSession]:
    """Parse the table; ``zone`` is the zone of its times (None: this system's local zone).

    Raises ``ValueError`` when a non-empty output has no header or a row does not parse.
    """
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    if not lines[0].lstrip().startswith("Job name"):
        raise ValueError(f"veeamconfig session list: unexpected first line {lines[0][:80]!r}")
    sessions = []
    for line in lines[1:]:
        if line.lstrip().startswith("Total amount"):
            break
        match = _ROW.match(line.strip())
        if not match:
            raise ValueError(f"veeamconfig session list: cannot parse row {line.strip()[:120]!r}")
        end = match.group("end")
        sessions.append(
            VeeamSession(
                job=match.group("job").strip(),
                type=match.group("type"),
                id=match.group("id").lower(),
                state=match.group("state"),
                started_at=parse_naive(match.group("start"), zone),
                finished_at=parse_naive(end, zone) if end else None,
            )
        )
    return sessions


def backup_sessions(sessions: List[VeeamSession], job: Optional[str]) -> List[VeeamSession]:
    """Backup sessions (not restores, not malware scans), of ``job`` if given, oldest first."""
    chosen = [s for s in sessions if s.type == "Backup" and (job is None or s.job == job)]
    return sorted(chosen, key=lambda s: s.started_at)


def last_success(sessions: List[VeeamSession]) -> Optional[VeeamSession]:
    """The newest finished session whose state means a restore point was made."""
    done = [s for s in sessions if s.state in SUCCESS_STATES and s.finished_at is not None]
    return max(done, key=lambda s: s.started_at) if done else None
