"""Ports collector (M07, M11): every listening TCP and bound UDP socket, its exposure and owner.

Facts only: address, port, whether it is reachable beyond loopback, which process
(and systemd unit) holds it, and tags for known plaintext, remote-service and
database ports.  The policy decides what is allowed.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from collectors.base import CollectorSpec, Context
from collectors.ports import report
from collectors.ports.model import TAGS, ProcessInfo
from collectors.ports.sockets import listeners
from collectors.settings import REQUIRED, Field, Schema
from evidence.model import Gap, Outcome

VERSION = "2"

_PORT = Field(int, REQUIRED, "port number, 1-65535", minimum=1)
_PROTOCOL = Field(str, "tcp", "tcp, udp or any", choices=("tcp", "udp", "any"))

SETTINGS: Schema = {
    "extra_ports": Field(
        list,
        [],
        "extra known ports for this node, e.g. a vendor's service SSH port: each {port, protocol, service, tag}",
        items={
            "port": _PORT,
            "protocol": _PROTOCOL,
            "service": Field(str, REQUIRED, "a name for the service, reported in 'services'"),
            "tag": Field(str, "remote_service", "tag to give matching sockets", choices=TAGS),
        },
    ),
    "allowed_ports": Field(
        list,
        [],
        "per-node allow-list hint: each {port, protocol}; when set, every socket reports allow_listed true/false",
        items={"port": _PORT, "protocol": _PROTOCOL},
    ),
}

Lookup = Callable[[int], Tuple[ProcessInfo, List[Gap]]]


def assemble(entries: Sequence[Any], lookup: Lookup, settings: Mapping[str, Any], is_root: bool) -> Outcome:
    """Observed facts and gaps from psutil-shaped ``entries``; ``lookup`` finds a pid's owner."""
    found, problems = listeners(entries)
    gaps: List[Gap] = []
    if problems:
        gaps.append(Gap(f"{len(problems)} socket entries", "unreadable: " + "; ".join(problems[:3])))
    owners: Dict[int, ProcessInfo] = {}
    for pid in sorted({s.pids[0] for s in found if s.pids}):
        owners[pid], more = lookup(pid)
        gaps.extend(more)
    extra = report.extra_ports(settings.get("extra_ports", []))
    allow = settings.get("allowed_ports") or None
    records = [report.socket_record(s, owners[s.pids[0]] if s.pids else None, extra, allow) for s in found]
    unmapped = sum(1 for s in found if not s.pids)
    if unmapped:
        gaps.append(Gap(f"owner of {unmapped} sockets", report.unmapped_reason(unmapped, is_root)))
    observed: Dict[str, Any] = {"sockets": records, "counts": report.counts(records)}
    return Outcome.from_parts(observed, gaps)


def collect(ctx: Context, entries: Optional[Sequence[Any]] = None) -> Outcome:
    """Read the socket table through psutil (or use ``entries``) and describe it."""
    from collectors.ports import probe  # deferred: keeps psutil out of import time

    if entries is None:
        read, why = probe.read_connections()
        if read is None:
            return Outcome.failed(why or "cannot list sockets")
        entries = read
    return assemble(entries, lambda pid: probe.lookup_process(ctx, pid), ctx.settings, ctx.is_root)


def _collect(ctx: Context) -> Outcome:
    return collect(ctx)


SPEC = CollectorSpec(
    name="ports",
    version=VERSION,
    controls=("M07", "M11"),
    collect=_collect,
    settings=SETTINGS,
    summary=report.summary,
    watch_paths=lambda settings: (),
)
