"""A quick look at every UPS's status for the daemon, between full collections.

Only the status words (OL, OB, LB, …) of the configured NUT and apcupsd servers, with a
short timeout: when they change, the daemon runs the full power collector at once, so a
UPS going on battery reaches the centre in seconds, not at the next interval.  With no
UPS software it costs two refused loopback connections.
"""

from __future__ import annotations

from typing import List, Tuple

from collectors.base import Context
from collectors.power import read_servers

PROBE_TIMEOUT = 1.0


def status_key(ctx: Context) -> Tuple[Tuple[str, str, str], ...]:
    """(source, UPS, status) for every UPS that answered, sorted; changes when any status does."""
    timeout = min(PROBE_TIMEOUT, float(ctx.settings.get("server_timeout", 2.0)))
    seen: List[Tuple[str, str, str]] = []
    results = [
        read_servers.query_nut(str(s["host"]), int(s.get("port", 3493)), timeout)
        for s in ctx.settings.get("nut_servers", [])
    ]
    results += [
        read_servers.query_apcupsd(str(s["host"]), int(s.get("port", 3551)), timeout)
        for s in ctx.settings.get("apcupsd_servers", [])
    ]
    for result in results:
        for ups in result.ups:
            seen.append((ups.source, ups.label, ups.status_raw or ""))
    return tuple(sorted(seen))
