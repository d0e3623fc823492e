"""``ntpq -pn`` (ntp 4.2 and NTPsec) peer billboard (pure).

Columns (ntpq(1), "peers"): remote, refid, st, t, when, poll, reach, delay, offset, jitter, the
remote prefixed by its tally code: ``*`` system peer, ``o`` system peer via PPS, ``+`` candidate,
``#`` backup, ``-`` outlier, ``x`` falseticker, ``.`` excess, space rejected.  Delay, offset and
jitter are in milliseconds; a positive offset means this clock is behind the peer.  ``when`` is
the time since the peer's last packet: seconds, or past 2048 s rounded to minutes (``12m``),
hours (``5h``) or days (``3d``); ``-`` when none has arrived.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

_TALLY = {
    "*": "system_peer",
    "o": "system_peer_pps",
    "+": "candidate",
    "#": "backup",
    "-": "outlier",
    "x": "falseticker",
    ".": "excess",
    " ": "rejected",
}


_UNIT_S = {"m": 60, "h": 3600, "d": 86400}


class NtpqFormatError(ValueError):
    """The output does not have the documented shape."""


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise NtpqFormatError(f"{what} is not a number: {text[:30]!r}") from None
    if not math.isfinite(value):
        raise NtpqFormatError(f"{what} is not a finite number: {text[:30]!r}")
    return value


def when_seconds(text: str) -> Optional[int]:
    """``when`` in seconds: ``29`` -> 29, ``12m`` -> 720; ``-`` (no packet yet) or another form -> None."""
    unit = _UNIT_S.get(text[-1:], 1)
    number = text[:-1] if unit > 1 else text
    return int(number) * unit if number.isdigit() and number.isascii() else None


def parse_peers(text: str) -> List[Dict[str, Any]]:
    """One record per peer line; header and ``====`` rule are skipped."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.split()[:2] == ["remote", "refid"]), None)
    if header is None:
        raise NtpqFormatError(f"no peer table header: {text.strip()[:80]!r}")
    peers = []
    for line in lines[header + 1 :]:
        if not line.strip() or set(line.strip()) == {"="}:
            continue
        tally = line[0]
        if tally not in _TALLY:
            raise NtpqFormatError(f"unknown tally code {tally!r} in {line[:60]!r}")
        parts = line[1:].split()
        if len(parts) != 10:
            raise NtpqFormatError(f"a peer line has {len(parts)} columns, expected 10: {line[:80]!r}")
        remote, refid, stratum, kind, when, poll, reach, delay, offset, jitter = parts
        try:
            stratum_value, reach_value, poll_value = int(stratum), int(reach, 8), int(poll)
        except ValueError:
            raise NtpqFormatError(f"stratum, poll or reach of {remote[:40]!r} is not a number") from None
        peers.append(
            {
                "address": remote,
                "refid": refid,
                "state": _TALLY[tally],
                "stratum": stratum_value,
                "type": kind,
                "last_rx_s": when_seconds(when),
                "poll_s": poll_value,
                "reach": reach_value,
                "delay_s": _float(delay, "delay") / 1000.0,
                "offset_s": _float(offset, "offset") / 1000.0,
                "jitter_s": _float(jitter, "jitter") / 1000.0,
            }
        )
    return peers


def system_peer(peers: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The peer ntpd synchronises to (tally ``*`` or ``o``), if any."""
    return next((p for p in peers if p["state"] in ("system_peer", "system_peer_pps")), None)
