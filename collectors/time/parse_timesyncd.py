"""``timedatectl show`` and ``timedatectl timesync-status`` (pure).

``show`` prints ``Key=value`` lines of org.freedesktop.timedate1 (timedatectl(1)):
``NTPSynchronized`` is the kernel's view (adjtimex(2) without ``STA_UNSYNC``), true whichever
daemon disciplines the clock; ``NTP`` says whether systemd-timesyncd is enabled.
``timesync-status`` is systemd-timesyncd's own human-readable state (systemd >= 239): the server,
stratum, leap and the offset of the last exchange as a signed time span (``+291us``, ``-2.156ms``).
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, Optional

# systemd's format_timespan units (src/basic/time-util.c), in seconds.
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_SPAN_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|min|s|h|d)")


class TimesyncdFormatError(ValueError):
    """The output does not have the documented shape."""


def parse_show(text: str) -> Dict[str, str]:
    """``Key=value`` lines into a mapping (later keys win; other lines are refused)."""
    values: Dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key or not key.isidentifier():
            raise TimesyncdFormatError(f"line {number} is not Key=value: {line[:60]!r}")
        values[key] = value
    return values


def yes_no(value: Optional[str]) -> Optional[bool]:
    """systemd's boolean words; anything else is unknown."""
    if value in ("yes", "true", "1"):
        return True
    if value in ("no", "false", "0"):
        return False
    return None


def parse_span(text: str) -> float:
    """A signed systemd time span (``+2.497ms``, ``-1min 3.2s``) in seconds."""
    stripped = text.strip()
    sign = -1.0 if stripped.startswith("-") else 1.0
    body = stripped.lstrip("+-").replace(" ", "")
    if not body:
        raise TimesyncdFormatError(f"not a time span: {text[:40]!r}")
    total, position = 0.0, 0
    for match in _SPAN_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(body) or not math.isfinite(total):
        raise TimesyncdFormatError(f"not a time span: {text[:40]!r}")
    return sign * total


def parse_timesync_status(text: str) -> Dict[str, Any]:
    """Server, stratum, leap, offset and packet count of timesyncd's last exchange."""
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields[key.strip().lower()] = value.strip()
    if "server" not in fields:
        raise TimesyncdFormatError(f"no Server line: {text.strip()[:80]!r}")
    server = fields["server"]
    # "185.125.190.57 (ntp.ubuntu.com)": the address, then the name it was resolved from.
    match = re.match(r"^(\S+)(?:\s+\((.*)\))?$", server)
    address = match.group(1) if match else server
    name = match.group(2) if match and match.group(2) else None
    result: Dict[str, Any] = {
        "server_address": None if address in ("n/a", "null") else address,
        "server_name": name,
        "leap": fields.get("leap"),
        "stratum": None,
        "offset_s": None,
        "packet_count": None,
    }
    try:
        if "stratum" in fields:
            result["stratum"] = int(fields["stratum"])
        if "packet count" in fields:
            result["packet_count"] = int(fields["packet count"])
    except ValueError as err:
        raise TimesyncdFormatError(f"stratum or packet count is not a number: {err}") from None
    if "offset" in fields:
        result["offset_s"] = parse_span(fields["offset"])
    return result
