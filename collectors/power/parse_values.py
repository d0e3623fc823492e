"""Small pure conversions shared by the NUT and apcupsd parsers: numbers and self-test dates."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Optional

from evidence.model import utc_iso

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]*)")


def number(text: Optional[str]) -> Optional[float]:
    """Leading number of ``"100.0 Percent"`` / ``"88"``; None when absent or not numeric."""
    if text is None:
        return None
    match = _NUMBER.match(text)
    return float(match.group(1)) if match else None


def unit(text: Optional[str]) -> str:
    """The unit word after the number (``"Minutes"``), or ``""``."""
    if text is None:
        return ""
    match = _NUMBER.match(text)
    return match.group(2) if match else ""


def seconds(text: Optional[str]) -> Optional[int]:
    """A duration in whole seconds from ``"35.0 Minutes"``, ``"120 Seconds"`` or bare seconds."""
    value = number(text)
    if value is None:
        return None
    scale = {"minutes": 60, "minute": 60, "hours": 3600, "hour": 3600}.get(unit(text).lower(), 1)
    return round(value * scale)


# Date formats seen for a last self-test: apcupsd 3.14 prints "%Y-%m-%d %H:%M:%S %z"
# (LASTSTEST); NUT drivers give ups.test.date as ISO dates or, from APC smart
# firmware, "mm/dd/yy" (NUT apcsmart driver).
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z")
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y")


def test_date(text: Optional[str]) -> Optional[str]:
    """RFC 3339: a UTC date-time when time and zone are known, else a full-date, else None."""
    if not text:
        return None
    raw = text.strip()
    for fmt in _DATETIME_FORMATS:
        try:
            return utc_iso(datetime.strptime(raw, fmt))
        except ValueError:
            continue
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    return None
