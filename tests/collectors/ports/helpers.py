"""Load captured psutil output (see tests/fixtures/ports/README.md) for the pure parts."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Tuple

from collectors.ports.model import ProcessInfo
from collectors.ports.parse_cgroup import parse_cgroup
from evidence.model import Gap

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ports"


def load_capture(name: str) -> Tuple[List[Any], Callable[[int], Tuple[ProcessInfo, List[Gap]]]]:
    """The captured entries (shaped like psutil's sconn) and a lookup over the captured owners."""
    data = json.loads((FIXTURES / name).read_text())
    entries = [
        SimpleNamespace(
            fd=c["fd"],
            family=c["family"],
            type=c["type"],
            laddr=tuple(c["laddr"]),
            raddr=tuple(c["raddr"]),
            status=c["status"],
            pid=c["pid"],
        )
        for c in data["connections"]
    ]
    owners: Dict[int, Dict[str, Any]] = {int(pid): info for pid, info in data["processes"].items()}

    def lookup(pid: int) -> Tuple[ProcessInfo, List[Gap]]:
        info = owners[pid]
        membership = parse_cgroup(info["cgroup"])
        assert membership is not None
        return ProcessInfo(pid, info["name"], info["exe"], info["user"], membership.unit, membership.path), []

    return entries, lookup
