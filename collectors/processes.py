"""Which processes run: the names in ``/proc/<pid>/comm`` (read through the Context), and psutil's
process list; each read once per collection round (:meth:`Context.once`), however many collectors ask.

``running_names`` is a hint, not proof: a collector that cannot read ``/proc`` (a captured tree,
another PID namespace) asks each tool instead.  The kernel cuts ``comm`` at 15 bytes
(``TASK_COMM_LEN``, proc(5)), so ``systemd-timesyncd`` appears as ``systemd-timesyn``.
"""

from __future__ import annotations

import os
from typing import Any, FrozenSet, List, Optional, Tuple

from collectors.base import Context, describe_os_error

COMM_LENGTH = 15


def comm_name(name: str) -> str:
    """``name`` as ``/proc/<pid>/comm`` shows it (cut at 15 bytes)."""
    return name[:COMM_LENGTH]


def running_names(ctx: Context) -> Tuple[Optional[FrozenSet[str]], str]:
    """The command names of every process, or ``None`` and why they could not be listed."""
    return ctx.once("comm names", lambda: _read_comm_names(ctx))


def _read_comm_names(ctx: Context) -> Tuple[Optional[FrozenSet[str]], str]:
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


def psutil_processes(ctx: Context) -> List[Tuple[Any, Optional[str]]]:
    """Every process psutil lists, with its name (``None`` where it could not be read).

    psutil's ``name()`` is the whole program name where ``comm`` is cut at 15 bytes (it completes
    it from the command line).  Pairs of the ``psutil.Process`` (for a further attribute such as
    the command line) and the name; psutil reads the real ``/proc``, not one below the root.
    """
    return list(ctx.once("psutil processes", read_psutil_processes))


def read_psutil_processes() -> List[Tuple[Any, Optional[str]]]:
    """:func:`psutil_processes` read afresh, outside a round."""
    import psutil  # deferred: only the collectors that list processes pay for it

    # process_iter skips processes that vanish mid-pass on psutil 5.9 and 7.x alike
    return [(proc, proc.info.get("name")) for proc in psutil.process_iter(["name"])]
