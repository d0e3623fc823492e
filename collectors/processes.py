"""Which daemons run: the names in ``/proc/<pid>/comm`` (pure parse, thin read through the Context).

A hint, not proof: a collector that cannot read ``/proc`` (a captured tree, another PID namespace)
asks each tool instead.  The kernel cuts ``comm`` at 15 bytes (``TASK_COMM_LEN``, proc(5)), so
``systemd-timesyncd`` appears as ``systemd-timesyn``.
"""

from __future__ import annotations

import os
from typing import FrozenSet, Optional, Tuple

from collectors.base import Context, describe_os_error

COMM_LENGTH = 15


def comm_name(name: str) -> str:
    """``name`` as ``/proc/<pid>/comm`` shows it (cut at 15 bytes)."""
    return name[:COMM_LENGTH]


def running_names(ctx: Context) -> Tuple[Optional[FrozenSet[str]], str]:
    """The command names of every process, or ``None`` and why they could not be listed."""
    proc = ctx.path("/proc")
    try:
        pids = [entry for entry in os.listdir(proc) if entry.isdigit()]
    except OSError as err:
        return None, describe_os_error(err, "/proc")
    if not pids:
        return None, "/proc lists no processes (not a mounted procfs)"
    names = set()
    for pid in pids:
        try:
            with open(proc / pid / "comm", "rb") as handle:
                names.add(handle.read(64).decode("utf-8", errors="replace").strip())
        except OSError:
            continue  # exited meanwhile, or hidden (hidepid=): the others still count
    return frozenset(names), ""
