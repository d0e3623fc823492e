"""Time parsing shared by the backup parsers: RFC 3339 with nanoseconds, and zone-less local times.

restic prints Go's RFC 3339 with up to nine fractional digits ("2026-11-20T10:00:00.123456789+01:00"),
which ``datetime.fromisoformat`` of Python 3.9 does not accept; borg and Veeam print times without a
zone, so the caller says which zone they are in.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Optional

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$")
_NAIVE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?$")


def _micro(fraction: Optional[str]) -> int:
    return int((fraction or "0")[:6].ljust(6, "0"))


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 time with any number of fractional digits, as an aware UTC datetime.

    Raises ``ValueError`` for anything else, including a time without a zone.
    """
    match = _RFC3339.match(text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 time with a zone: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    zone = match.group(8)
    if zone in ("Z", "z"):
        offset = timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        offset = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    moment = datetime(year, month, day, hour, minute, second, _micro(match.group(7)), tzinfo=offset)
    return moment.astimezone(timezone.utc)


def parse_naive(text: str, zone: Optional[tzinfo]) -> datetime:
    """A zone-less ``YYYY-MM-DD[T ]HH:MM[:SS[.f]]`` taken in ``zone`` (None: this system's local zone)."""
    match = _NAIVE.match(text.strip())
    if not match:
        raise ValueError(f"not a date and time: {text!r}")
    year, month, day, hour, minute = (int(g) for g in match.groups()[:5])
    second = int(match.group(6) or 0)
    naive = datetime(year, month, day, hour, minute, second, _micro(match.group(7)))
    # astimezone() on a naive datetime assumes the system's local time, DST included.
    local = naive.replace(tzinfo=zone) if zone is not None else naive.astimezone()
    return local.astimezone(timezone.utc)
