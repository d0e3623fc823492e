"""The ports collector's entry: psutil's socket table and each owner, assembled into facts."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from collectors.base import Context
from collectors.ports import report
from collectors.ports.model import ProcessInfo
from collectors.ports.parse_sockets import listeners
from evidence.model import Gap, Outcome

Lookup = Callable[[int], Tuple[ProcessInfo, List[Gap]]]


def assemble(entries: Sequence[Any], lookup: Lookup, settings: Mapping[str, Any], is_root: bool) -> Outcome:
    """Observed facts and gaps from psutil-shaped ``entries``; ``lookup`` finds a pid's owner."""
    found, problems = listeners(entries)
    gaps: List[Gap] = []
    if problems:
        gaps.append(Gap(report.entries(len(problems)), "unreadable: " + "; ".join(problems[:3])))
    owners: Dict[int, ProcessInfo] = {}
    for pid in sorted({s.pids[0] for s in found if s.pids}):
        owners[pid], more = lookup(pid)
        gaps.extend(more)
    extra = report.extra_ports(settings.get("extra_ports", []))
    allow = settings.get("allowed_ports") or None
    records = [report.socket_record(s, owners[s.pids[0]] if s.pids else None, extra, allow) for s in found]
    unmapped = sum(1 for s in found if not s.pids)
    if unmapped:
        gaps.append(Gap(f"owner of {report.sockets(unmapped)}", report.unmapped_reason(unmapped, is_root)))
    observed: Dict[str, Any] = {"sockets": records, "counts": report.counts(records)}
    return Outcome.from_parts(observed, gaps)


def collect(ctx: Context, entries: Optional[Sequence[Any]] = None) -> Outcome:
    """Read the socket table through psutil (or use ``entries``) and describe it."""
    from collectors.ports import read_psutil  # deferred: keeps psutil out of import time

    if entries is None:
        read, why = read_psutil.connections(ctx)
        if read is None:
            return Outcome.failed(why or "cannot list sockets")
        entries = read
    return assemble(entries, lambda pid: read_psutil.lookup_process(ctx, pid), ctx.settings, ctx.is_root)


def collect_node(ctx: Context) -> Outcome:
    """``collect`` as the registry calls it: this node's own socket table."""
    return collect(ctx)


def summary(observed: Mapping[str, Any]) -> str:
    """One line for the ``collect`` table."""
    c = observed.get("counts")
    if not isinstance(c, Mapping):
        return ""
    tags = c.get("non_loopback_by_tag", {})
    line = (
        f"{report.sockets(c.get('total', 0))}, {c.get('total', 0) - c.get('loopback', 0)} beyond loopback"
        f" (db {tags.get('database', 0)}, plaintext {tags.get('plaintext_remote', 0)},"
        f" remote-service {tags.get('remote_service', 0)})"
    )
    if c.get("unmapped"):
        line += f"; {c['unmapped']} without owner"
    return line


__all__ = ["assemble", "collect", "collect_node", "summary"]
