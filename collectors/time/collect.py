"""Ask chrony, systemd-timesyncd and ntpd whether they keep this clock synchronised (all I/O here).

Each daemon gives a record (running, synchronised, reference, stratum, offset, last sync); the
node's answer is the daemon that is synchronised, else the one that runs.  A daemon whose state
could not be seen makes the answer unknown (``synchronised: null``) unless another one is
synchronised: unknown is never passing.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Tuple

from collectors.base import Context, Observed
from collectors.processes import comm_name, running_names
from collectors.runner import CommandResult
from collectors.time import parse_chrony, parse_timesyncd
from evidence.model import Gap, Outcome, utc_iso

Names = Optional[FrozenSet[str]]
TIMESYNCD_CLOCK = "/var/lib/systemd/timesync/clock"
TIMESYNCD_SYNCHRONIZED = "/run/systemd/timesync/synchronized"


def _record(name: str, running: Optional[bool], reason: Optional[str] = None) -> Dict[str, Any]:
    return {
        "name": name,
        "running": running,
        "synchronised": None if running is not False else False,
        "reason": reason,
        "reference": None,
        "stratum": None,
        "offset_s": None,
        "last_sync_at": None,
        "leap_status": None,
        "sources": [],
    }


def _absent(name: str, process: str, names: Names) -> Optional[Dict[str, Any]]:
    """The record of a daemon the process list shows is not running, else None (ask it)."""
    if names is not None and comm_name(process) not in names:
        return _record(name, False, f"{process} is not running")
    return None


def _not_answering(name: str, process: str, names: Names, why: str) -> Dict[str, Any]:
    """A daemon that did not answer: not running unless the process list shows it or cannot tell."""
    if names is None:
        return _record(name, None, f"{why}; whether {process} runs is unknown (the process list was unreadable)")
    if comm_name(process) in names:
        return _record(name, None, f"{process} runs but {why}")
    return _record(name, False, f"{process} is not running ({why})")


def _not_installed(name: str, process: str, names: Names, tool: str, binary: str) -> Dict[str, Any]:
    """The client tool is missing: the daemon's package is not installed, unless the process runs."""
    why = f"{tool} is not installed ({binary!r} not found)"
    if names is not None and comm_name(process) in names:
        return _record(name, None, f"{process} runs but {why}")
    return _record(name, False, why)


def _ask(ctx: Context, argv: List[str]) -> CommandResult:
    return ctx.command(argv, timeout=float(ctx.settings.get("command_timeout", 3.0)))


def chrony(ctx: Context, names: Names) -> Dict[str, Any]:
    binary, socket = str(ctx.settings.get("chronyc", "chronyc")), str(ctx.settings.get("chronyd_socket", ""))
    if not socket:
        absent = _absent("chrony", "chronyd", names)
        if absent:
            return absent
    base = [binary] + (["-h", socket] if socket else []) + ["-c", "-n"]
    result = _ask(ctx, [*base, "tracking"])
    if result.error == "not found":
        return _not_installed("chrony", "chronyd", names, "chronyc", binary)
    if not result.ok:
        why = f"chronyd does not answer chronyc{' on ' + socket if socket else ''}: {_last_line(result)}"
        if socket and result.error is None:
            return _record("chrony", False, why)
        return _not_answering("chrony", "chronyd", names, why)
    record = _record("chrony", True)
    try:
        tracking = parse_chrony.parse_tracking(result.text)
    except parse_chrony.ChronyFormatError as err:
        record["reason"] = f"chronyc tracking: unreadable answer: {err}"
        return record
    record.update({k: tracking[k] for k in ("synchronised", "reference", "stratum", "offset_s", "last_sync_at")})
    record["leap_status"] = tracking["leap_status"]
    if tracking["reference"] and tracking["reference_id"].upper() == parse_chrony.LOCAL_REFERENCE_ID:
        record["reason"] = "chronyd follows only its own clock (the 'local' directive): no time source is reachable"
    elif not tracking["synchronised"]:
        record["reason"] = f"chronyd is not synchronised (leap status: {tracking['leap_status']})"
    sources = _ask(ctx, [*base, "sources"])
    try:
        record["sources"] = parse_chrony.parse_sources(sources.text) if sources.ok else None
    except parse_chrony.ChronyFormatError as err:
        record["sources"] = None
        record["sources_reason"] = f"chronyc sources: unreadable answer: {err}"
    if not sources.ok:
        record["sources_reason"] = sources.describe_failure()
    elif record["synchronised"] and record["sources"] is not None and not parse_chrony.selected(record["sources"]):
        # chronyd keeps its last reference and leap status after losing every source
        # ("Can't synchronise: no selectable sources"); only the sources say it is adrift.
        record["synchronised"] = False
        record["reason"] = (
            f"chronyd has no selectable source now ({len(record['sources'])} configured); "
            f"it last synchronised at {record['last_sync_at']}"
        )
    return record


def timesyncd(ctx: Context, names: Names) -> Dict[str, Any]:
    absent = _absent("timesyncd", "systemd-timesyncd", names)
    if absent:
        return absent
    binary = str(ctx.settings.get("timedatectl", "timedatectl"))
    status = _ask(ctx, [binary, "timesync-status"])
    if status.error == "not found":
        return _not_installed("timesyncd", "systemd-timesyncd", names, "timedatectl", binary)
    if not status.ok:
        return _timesyncd_files(ctx, names, f"timedatectl timesync-status failed: {_last_line(status)}")
    record = _record("timesyncd", True)
    try:
        parsed = parse_timesyncd.parse_timesync_status(status.text)
    except parse_timesyncd.TimesyncdFormatError as err:
        record["reason"] = f"timedatectl timesync-status: unreadable answer: {err}"
        return record
    show = _ask(ctx, [binary, "show"])
    kernel: Optional[bool] = None
    if show.ok:
        try:
            kernel = parse_timesyncd.yes_no(parse_timesyncd.parse_show(show.text).get("NTPSynchronized"))
        except parse_timesyncd.TimesyncdFormatError:
            kernel = None
    has_server = parsed["server_address"] is not None and (parsed["packet_count"] or 0) > 0
    record.update(
        {
            # timesyncd synchronises only with a server that answered; the kernel's flag may be
            # another daemon's doing, so it can only take the answer away
            "synchronised": has_server and kernel is not False,
            "reference": parsed["server_name"] or parsed["server_address"],
            "stratum": parsed["stratum"],
            "offset_s": parsed["offset_s"],
            "leap_status": parsed["leap"],
            "last_sync_at": _mtime(ctx, TIMESYNCD_CLOCK),
        }
    )
    if kernel is None and has_server:
        record["synchronised"] = None
        record["reason"] = f"timedatectl show did not say NTPSynchronized: {_last_line(show)}"
    elif not record["synchronised"]:
        record["reason"] = (
            "systemd-timesyncd has no server answering" if not has_server else "the kernel says not synchronised"
        )
    return record


def _timesyncd_files(ctx: Context, names: Names, why: str) -> Dict[str, Any]:
    """timedatectl cannot answer (no D-Bus): what timesyncd's state files say, as unknown."""
    record = _not_answering("timesyncd", "systemd-timesyncd", names, why)
    if record["running"] is False:
        return record
    last = _mtime(ctx, TIMESYNCD_CLOCK)
    if last and os.path.exists(ctx.path(TIMESYNCD_SYNCHRONIZED)):
        record["last_sync_at"] = last
        record["reason"] += f"; its state files say it last synchronised at {last}"
    return record


def ntpd(ctx: Context, names: Names) -> Dict[str, Any]:
    absent = _absent("ntpd", "ntpd", names)
    if absent:
        return absent
    binary = str(ctx.settings.get("ntpq", "ntpq"))
    result = _ask(ctx, [binary, "-pn"])
    if result.error == "not found":
        return _not_installed("ntpd", "ntpd", names, "ntpq", binary)
    from collectors.time import parse_ntpq  # only machines running ntpd need it

    try:
        peers = parse_ntpq.parse_peers(result.text) if result.error is None else None
    except parse_ntpq.NtpqFormatError as err:
        if result.ok:
            record = _record("ntpd", True, f"ntpq -pn: unreadable answer: {err}")
            return record
        peers = None
    if peers is None:
        return _not_answering("ntpd", "ntpd", names, f"ntpd does not answer ntpq: {_last_line(result)}")
    record = _record("ntpd", True)
    peer = parse_ntpq.system_peer(peers)
    record["sources"] = peers
    record["synchronised"] = peer is not None
    if peer is None:
        record["reason"] = f"ntpd has no system peer among {len(peers)} peers"
    else:
        record.update({"reference": peer["address"], "stratum": peer["stratum"] + 1, "offset_s": peer["offset_s"]})
        if peer["last_rx_s"] is not None:  # the clock is updated from the system peer's packets
            record["last_sync_at"] = utc_iso(ctx.now() - timedelta(seconds=peer["last_rx_s"]))
    return record


def _last_line(result: CommandResult) -> str:
    if result.error is not None:
        return result.describe_failure()
    lines = [ln.strip() for ln in (result.stderr + b"\n" + result.stdout).decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln]
    return lines[-1][:200] if lines else f"exit status {result.returncode}"


def _mtime(ctx: Context, absolute: str) -> Optional[str]:
    try:
        return utc_iso(datetime.fromtimestamp(ctx.path(absolute).stat().st_mtime, timezone.utc))
    except (OSError, OverflowError, ValueError):
        return None


ASKERS: Dict[str, Callable[[Context, Names], Dict[str, Any]]] = {
    "chrony": chrony,
    "timesyncd": timesyncd,
    "ntpd": ntpd,
}
_ENABLING_SETTING = {"chrony": "chronyc", "timesyncd": "timedatectl", "ntpd": "ntpq"}


def collect(ctx: Context) -> Outcome:
    """Every enabled daemon's record, and the node's answer from them."""
    names, _why = running_names(ctx)
    daemons = [ask(ctx, names) for key, ask in ASKERS.items() if ctx.settings.get(_ENABLING_SETTING[key], key)]
    return Outcome.from_parts(*assemble(daemons))


def assemble(daemons: List[Dict[str, Any]]) -> Tuple[Observed, List[Gap]]:
    """The node's answer: the synchronised daemon, else one that runs; unknown when one is unseen."""
    gaps = [
        Gap(f"time daemon {d['name']}", d["reason"] or "state unknown") for d in daemons if d["synchronised"] is None
    ]
    synced = [d for d in daemons if d["synchronised"] is True]
    running = [d for d in daemons if d["running"]]
    chosen = synced[0] if synced else (running[0] if running else None)
    if synced:
        synchronised: Optional[bool] = True
    elif gaps:
        synchronised = None
    else:
        synchronised = False
    offset = chosen["offset_s"] if chosen else None
    observed: Observed = {
        "synchronised": synchronised,
        "source": chosen["name"] if chosen else None,
        "reference": chosen["reference"] if chosen else None,
        "stratum": chosen["stratum"] if chosen else None,
        "offset_s": offset,
        "offset_abs_s": abs(offset) if isinstance(offset, float) else None,
        "last_sync_at": chosen["last_sync_at"] if chosen else None,
        "leap_status": chosen["leap_status"] if chosen else None,
        "reason": None if synchronised else _why_not(daemons, chosen),
        "daemons": daemons,
    }
    return observed, gaps


def _why_not(daemons: List[Dict[str, Any]], chosen: Optional[Mapping[str, Any]]) -> str:
    if chosen is not None and chosen.get("reason"):
        return str(chosen["reason"])
    if not daemons:
        return "every time daemon is switched off in the settings"
    return "; ".join(f"{d['name']}: {d['reason']}" for d in daemons if d.get("reason")) or "no daemon is synchronised"


def summary(observed: Mapping[str, Any]) -> str:
    """E.g. ``synchronised by chrony to 192.0.2.1 (stratum 2), offset +0.000012 s``."""
    offset = observed.get("offset_s")
    detail = f", offset {offset:+.6f} s" if isinstance(offset, (int, float)) else ""
    if observed.get("synchronised") is True:
        return (
            f"synchronised by {observed.get('source')} to {observed.get('reference')}"
            f" (stratum {observed.get('stratum')}){detail}"
        )
    word = "NOT synchronised" if observed.get("synchronised") is False else "synchronisation unknown"
    return f"{word}: {observed.get('reason') or 'no reason given'}"
