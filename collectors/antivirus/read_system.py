"""The node-wide I/O every product check shares: one process pass and unit-file lookups."""

from __future__ import annotations

from typing import AbstractSet, Any, List, Optional, Sequence, Tuple

from collectors.antivirus.products import ProcessInfo
from collectors.base import Context
from collectors.processes import read_psutil_processes


def list_processes(
    cmdline_for: Optional[AbstractSet[str]] = None, processes: Optional[Sequence[Tuple[Any, Optional[str]]]] = None
) -> List[ProcessInfo]:
    """All processes with psutil: names, and command lines where needed.

    ``cmdline_for`` limits the (costlier) command-line reads to processes with those
    names; ``None`` reads every command line.  ``processes`` is psutil's process list
    already read this round (:func:`collectors.processes.psutil_processes`); without it,
    one pass of its own.
    """
    import psutil  # imported here: the agent only pays for it when this collector runs

    found: List[ProcessInfo] = []
    for proc, read_name in read_psutil_processes() if processes is None else processes:
        name = str(read_name or "")
        cmdline: Tuple[str, ...] = ()
        if cmdline_for is None or name in cmdline_for:
            try:
                cmdline = tuple(proc.cmdline())
            except psutil.Error:
                cmdline = ()
        found.append(ProcessInfo(proc.pid, name, cmdline))
    return found


def hidden_processes_reason(ctx: Context) -> Optional[str]:
    """Why other users' processes may be invisible (``hidepid`` on /proc, not root), or None."""
    if ctx.is_root:
        return None
    try:
        mounts = ctx.read_text("/proc/mounts")
    except OSError:
        return None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "/proc" and fields[0] == "proc":
            for option in fields[3].split(","):
                if option.startswith("hidepid=") and option not in ("hidepid=0", "hidepid=off"):
                    return f"not root and /proc is mounted with {option}: other users' processes are invisible"
    return None


def existing(ctx: Context, directories: Sequence[str], names: Sequence[str]) -> Tuple[str, ...]:
    """``dir/name`` for every name found in any of ``directories`` (first hit per name)."""
    hits: List[str] = []
    for name in names:
        for directory in directories:
            candidate = f"{directory.rstrip('/')}/{name}"
            if ctx.path(candidate).exists():
                hits.append(candidate)
                break
    return tuple(hits)


def existing_paths(ctx: Context, paths: Sequence[str]) -> Tuple[str, ...]:
    return tuple(p for p in paths if ctx.path(p).exists())
