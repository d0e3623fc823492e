"""Parse the binary login records: lastlog(8)'s file and wtmp (utmp(5)), glibc x86-64/aarch64 layout.

Pure.  ``struct lastlog`` is 292 bytes (int32 time, line[32], host[256]) at offset uid * 292;
``struct utmp`` is 384 bytes (type at 0, user[32] at 44, tv_sec at 340).  A short or damaged
record is skipped and counted.
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone
from typing import Dict, Optional, Tuple

LASTLOG_SIZE = 292
UTMP_SIZE = 384
USER_PROCESS = 7


def lastlog_time(record: bytes) -> Optional[datetime]:
    """The time in one lastlog record; None for an empty record (never logged in) or a short one."""
    if len(record) < 4:
        return None
    (seconds,) = struct.unpack("<i", record[:4])
    return datetime.fromtimestamp(seconds, timezone.utc) if seconds > 0 else None


def wtmp_last_logins(data: bytes) -> Tuple[Dict[str, datetime], int]:
    """Each user's latest login (USER_PROCESS) in ``data``; the count of damaged records.

    ``data`` may start mid-record (the end of a large file was read): it is aligned to whole
    records from its end.
    """
    latest: Dict[str, datetime] = {}
    damaged = 0
    start = len(data) % UTMP_SIZE
    for offset in range(start, len(data) - UTMP_SIZE + 1, UTMP_SIZE):
        record = data[offset : offset + UTMP_SIZE]
        (kind,) = struct.unpack("<h", record[:2])
        if kind != USER_PROCESS:
            continue
        user = record[44:76].split(b"\x00", 1)[0].decode("utf-8", errors="replace")
        (seconds,) = struct.unpack("<i", record[340:344])
        if not user or seconds <= 0:
            damaged += 1
            continue
        moment = datetime.fromtimestamp(seconds, timezone.utc)
        if user not in latest or moment > latest[user]:
            latest[user] = moment
    return latest, damaged
