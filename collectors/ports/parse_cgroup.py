"""Parse ``/proc/<pid>/cgroup`` into the systemd unit a process runs in.

Format (cgroups(7)): one ``hierarchy-ID:controller-list:cgroup-path`` line per
hierarchy; cgroup v2 has the single line ``0::/path``.  With a v1 or hybrid
layout systemd keeps its own tree in the named hierarchy ``name=systemd``, which
therefore wins over ``0::`` (as in systemd's ``cg_pid_get_path``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# Unit types that own processes (systemd.unit(5)); slices only group them.
_PROCESS_UNIT_SUFFIXES = (".service", ".scope", ".socket", ".mount", ".swap")


@dataclass(frozen=True)
class CgroupMembership:
    """The systemd view of one process: its cgroup path and unit (``None`` outside any unit)."""

    path: str
    unit: Optional[str]
    hierarchy: str  # "v2" (the ``0::`` line) or "name=systemd" (v1 / hybrid)


def unit_from_path(path: str) -> Optional[str]:
    """The first non-slice unit in a cgroup path, as ``cg_path_get_unit`` in systemd does.

    ``/system.slice/ssh.service`` -> ``ssh.service``;
    ``/user.slice/user-1000.slice/user@1000.service/app.slice/x.service`` -> ``user@1000.service``
    (the system unit; the user's own unit is below it); ``/`` -> ``None``.
    """
    for part in path.split("/"):
        if not part or part.endswith(".slice"):
            continue
        if part.endswith(_PROCESS_UNIT_SUFFIXES):
            return part
        return None  # e.g. /docker/<id> or /lxc/<name>: not a systemd unit
    return None


def parse_cgroup(text: str) -> Optional[CgroupMembership]:
    """The systemd cgroup of a process, or ``None`` when the file lists no usable hierarchy.

    Raises ``ValueError`` on a line that is not ``id:controllers:path``.
    """
    v2: Optional[str] = None
    named: Optional[str] = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].startswith("/"):
            raise ValueError(f"line {number} is not 'id:controllers:/path': {line[:80]!r}")
        ident, controllers, path = parts
        if ident == "0" and controllers == "":
            v2 = path
        elif "name=systemd" in controllers.split(","):
            named = path
    if named is not None:
        return CgroupMembership(named, unit_from_path(named), "name=systemd")
    if v2 is not None:
        return CgroupMembership(v2, unit_from_path(v2), "v2")
    return None
