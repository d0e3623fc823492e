"""``chronyc -c -n tracking`` and ``chronyc -c -n sources`` (pure).

The CSV fields are those of the human output in chronyc(1) ("tracking", "sources"), in order.
``System time`` is chronyd's remaining correction in seconds: positive when the system clock is
slow, i.e. behind NTP time (chronyc prints it as "N seconds slow of NTP time").  The reference id
``7F7F0101`` is chronyd's own ``local`` reference: the clock follows nothing outside this host.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from evidence.model import utc_iso

LOCAL_REFERENCE_ID = "7F7F0101"
NOT_SYNCHRONISED = "Not synchronised"
TRACKING_FIELDS = 14

# chronyc(1), "sources": M (mode) and S (state) columns.
_MODES = {"^": "server", "=": "peer", "#": "reference_clock"}
_STATES = {
    "*": "selected",
    "+": "combined",
    "-": "not_combined",
    "?": "unreachable",
    "x": "falseticker",
    "~": "too_variable",
}


class ChronyFormatError(ValueError):
    """The output does not have the documented shape (the message says how)."""


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ChronyFormatError(f"{what} is not a number: {text[:40]!r}") from None
    if not math.isfinite(value):
        raise ChronyFormatError(f"{what} is not a finite number: {text[:40]!r}")
    return value


def _rows(text: str) -> List[List[str]]:
    try:
        return [row for row in csv.reader(text.splitlines()) if row]
    except csv.Error as err:  # e.g. a NUL byte, which Python before 3.11 refuses
        raise ChronyFormatError(f"not chronyc's CSV: {err}") from None


def parse_tracking(text: str) -> Dict[str, Any]:
    """The tracking record: synchronised, reference, stratum, offset, last update, leap status."""
    rows = _rows(text)
    if not rows:
        raise ChronyFormatError("empty answer to tracking")
    row = rows[0]
    if len(row) != TRACKING_FIELDS:
        raise ChronyFormatError(f"tracking has {len(row)} fields, expected {TRACKING_FIELDS}: {text.strip()[:80]!r}")
    ref_id, ref_name, stratum_text, ref_time_text, system_time = row[:5]
    try:
        stratum = int(stratum_text)
    except ValueError:
        raise ChronyFormatError(f"stratum is not a number: {stratum_text[:40]!r}") from None
    ref_time = _number(ref_time_text, "ref time")
    leap = row[13].strip()
    local = ref_id.upper() == LOCAL_REFERENCE_ID
    synchronised = leap != NOT_SYNCHRONISED and ref_id.strip("0") != "" and not local
    last = None
    if ref_time > 0:
        try:
            last = utc_iso(datetime.fromtimestamp(ref_time, timezone.utc))
        except (OverflowError, OSError, ValueError) as err:
            raise ChronyFormatError(f"ref time out of range: {ref_time_text[:40]!r}") from err
    offset = _number(system_time, "system time")
    return {
        "synchronised": synchronised,
        "reference_id": ref_id,
        "reference": "local clock (chrony 'local' directive)" if local else (ref_name or None),
        "stratum": stratum,
        "last_sync_at": last,
        "offset_s": offset,
        "last_offset_s": _number(row[5], "last offset"),
        "root_delay_s": _number(row[10], "root delay"),
        "root_dispersion_s": _number(row[11], "root dispersion"),
        "leap_status": leap,
    }


def parse_sources(text: str) -> List[Dict[str, Any]]:
    """One record per source: mode, state, address, stratum, reach, adjusted offset and error."""
    sources = []
    for row in _rows(text):
        if len(row) != 10:
            raise ChronyFormatError(f"a source line has {len(row)} fields, expected 10: {','.join(row)[:80]!r}")
        mode, state, name, stratum, _poll, reach, last_rx, adjusted, _measured, error = row
        if mode not in _MODES or state not in _STATES:
            raise ChronyFormatError(f"unknown source mode/state {mode!r}/{state!r}")
        try:
            stratum_value, reach_value = int(stratum), int(reach, 8)
        except ValueError:
            raise ChronyFormatError(f"stratum or reach of {name[:40]!r} is not a number") from None
        sources.append(
            {
                "address": name,
                "mode": _MODES[mode],
                "state": _STATES[state],
                "stratum": stratum_value,
                "reach": reach_value,
                "last_rx_s": _number(last_rx, "last rx"),
                "offset_s": _number(adjusted, "offset"),
                "error_s": _number(error, "error"),
            }
        )
    return sources


def selected(sources: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The source chronyd synchronises to (state ``*``), if any."""
    return next((s for s in sources if s["state"] == "selected"), None)
