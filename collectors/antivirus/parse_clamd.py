"""Parse clamd's answers to ``zPING`` and ``zVERSION`` (pure).

clamd(8): ``PING`` answers ``PONG``; ``VERSION`` answers
``ClamAV <engine>/<daily db version>/<daily build date, ctime(3) in clamd's local time>``,
or just ``ClamAV <engine>`` when no official daily database is loaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional


@dataclass(frozen=True)
class ClamdVersion:
    """What ``VERSION`` reported."""

    engine: str
    database_version: Optional[int]
    database_date: Optional[str]
    """As clamd printed it (local time of the clamd process, no zone)."""
    database_time: Optional[datetime]
    """``database_date`` read in this process's local time zone, as UTC."""


def parse_pong(text: str) -> bool:
    """True when the answer to ``zPING`` is ``PONG``."""
    return text.strip("\0\n ") == "PONG"


def parse_version(text: str) -> ClamdVersion:
    """Parse a ``VERSION`` answer; raises ``ValueError`` for anything else."""
    line = text.strip("\0\n ")
    if not line.startswith("ClamAV "):
        raise ValueError(f"not a clamd VERSION answer: {line[:60]!r}")
    parts = line[len("ClamAV ") :].split("/", 2)
    engine = parts[0].strip()
    if not engine:
        raise ValueError("clamd VERSION answer without an engine version")
    if len(parts) == 1:
        return ClamdVersion(engine, None, None, None)
    if len(parts) != 3 or not parts[1].isdigit():
        raise ValueError(f"unexpected clamd VERSION answer: {line[:80]!r}")
    date = " ".join(parts[2].split())
    try:
        # ctime(3) format, e.g. "Wed Nov 25 09:24:01 2026"; mktime reads it as local time.
        struct = time.strptime(date, "%a %b %d %H:%M:%S %Y")
        moment: Optional[datetime] = datetime.fromtimestamp(time.mktime(struct), timezone.utc)
    except (ValueError, OverflowError):
        moment = None
    return ClamdVersion(engine, int(parts[1]), date, moment)
