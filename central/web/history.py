"""Compliance over time: the share of nodes passing each control at the end of each day.

Reconstructed backwards from today's findings by undoing ``finding_changes`` newest first, keeping
per (node, control) counters so each day costs only the changes made that day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Set, Tuple

from sqlalchemy import Connection, select

from central.db.schema import agents, finding_changes, findings

DAYS = 30


@dataclass(frozen=True)
class Series:
    control: str
    days: List[datetime]
    """End of each day, oldest first."""
    shares: List[Optional[float]]
    """Passing nodes / nodes with a finding for the control; None when no node had one."""
    nodes: List[int]


class _Tally:
    """Per (node, control): findings and how many of them are not passing; per control: nodes, passing."""

    def __init__(self, rule_controls: Dict[str, List[str]]) -> None:
        self.rule_controls = rule_controls
        self.status: Dict[Tuple[str, str], str] = {}
        self.pair: Dict[Tuple[str, str], List[int]] = defaultdict(lambda: [0, 0])
        self.nodes: Dict[str, int] = defaultdict(int)
        self.passing: Dict[str, int] = defaultdict(int)

    def _account(self, agent: str, control: str, sign: int) -> None:
        total, bad = self.pair[(agent, control)]
        if total:
            self.nodes[control] += sign
            if not bad:
                self.passing[control] += sign

    def set(self, agent: str, rule: str, status: Optional[str]) -> None:
        old = self.status.pop((agent, rule), None)
        if status is not None:
            self.status[(agent, rule)] = status
        for control in self.rule_controls.get(rule, ()):
            self._account(agent, control, -1)
            counters = self.pair[(agent, control)]
            if old is not None:
                counters[0] -= 1
                counters[1] -= old != "passing"
            if status is not None:
                counters[0] += 1
                counters[1] += status != "passing"
            self._account(agent, control, +1)


def compliance(conn: Connection, now: datetime, visible: Any, controls: List[str], days: int = DAYS) -> List[Series]:
    scope = select(agents.c.id).where(agents.c.revoked_at.is_(None))
    if visible is not None:
        scope = scope.where(visible)
    ids = scope
    current = conn.execute(
        select(findings.c.agent_id, findings.c.rule_id, findings.c.status, findings.c.controls).where(
            findings.c.agent_id.in_(ids)
        )
    ).all()
    rule_controls: Dict[str, List[str]] = {}
    for _, rule, _, ctrl in current:
        rule_controls.setdefault(rule, list(ctrl or []))
    tally = _Tally(rule_controls)
    for agent, rule, status, _ in current:
        tally.set(agent, rule, status)
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    changes = conn.execute(
        select(
            finding_changes.c.agent_id, finding_changes.c.rule_id, finding_changes.c.from_status, finding_changes.c.at
        )
        .where(finding_changes.c.at >= start, finding_changes.c.agent_id.in_(ids))
        .order_by(finding_changes.c.at.desc(), finding_changes.c.id.desc())
    ).all()
    ends = [now] + [(now - timedelta(days=back)).replace(hour=23, minute=59, second=59) for back in range(1, days)]
    shares: Dict[str, List[Optional[float]]] = {c: [] for c in controls}
    counts: Dict[str, List[int]] = {c: [] for c in controls}
    position = 0
    for end in ends:  # newest first
        while position < len(changes) and changes[position].at > end:
            change = changes[position]
            tally.set(change.agent_id, change.rule_id, change.from_status)
            position += 1
        for control in controls:
            total = tally.nodes[control]
            counts[control].append(total)
            shares[control].append(tally.passing[control] / total if total else None)
    ends.reverse()
    return [Series(c, ends, list(reversed(shares[c])), list(reversed(counts[c]))) for c in controls]


def sparkline(series: Series, width: int = 300, height: int = 40) -> Dict[str, Any]:
    """Points for an SVG polyline (0 % at the bottom, 100 % at the top) and the latest share."""
    step = width / max(len(series.shares) - 1, 1)
    points: List[str] = []
    for index, share in enumerate(series.shares):
        if share is not None:
            points.append(f"{index * step:.1f},{height - share * height:.1f}")
    known: Set[int] = {i for i, s in enumerate(series.shares) if s is not None}
    latest = series.shares[-1] if series.shares else None
    last = points[-1].split(",") if points else None
    return {
        "points": " ".join(points),
        "latest": latest,
        "known_days": len(known),
        "width": width,
        "height": height,
        "dot": (last[0], last[1]) if last and latest is not None else None,
    }
