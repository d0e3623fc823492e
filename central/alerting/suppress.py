"""Maintenance windows and waivers in force: what they allow and whom they hold back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, List, Mapping, Optional

from sqlalchemy import Connection, or_, select

from central.db.schema import maintenance_windows, waivers


@dataclass(frozen=True)
class InForce:
    windows: List[Mapping[Any, Any]]
    waivers: List[Mapping[Any, Any]]

    @staticmethod
    def _covers(row: Mapping[Any, Any], agent: Mapping[Any, Any]) -> bool:
        return (
            (row["agent_id"] is None or row["agent_id"] == agent["id"])
            and (row["group_name"] is None or row["group_name"] == agent["group_name"])
            and (row["tenant"] is None or row["tenant"] == agent["tenant"])
        )

    def window(self, agent: Mapping[Any, Any]) -> Optional[Mapping[Any, Any]]:
        """An active window covering the node (it holds back the node's alerts)."""
        return next((w for w in self.windows if self._covers(w, agent)), None)

    def accepted(self, agent: Mapping[Any, Any], rule_id: str) -> Optional[str]:
        """Why a deviation of ``rule_id`` on this node is accepted: a waiver, or a window allowing it."""
        for waiver in self.waivers:
            if waiver["rule_id"] == rule_id and self._covers(waiver, agent):
                return f"waiver {waiver['id']} until {waiver['expires_at']:%Y-%m-%d} ({waiver['justification']})"
        for window in self.windows:
            if rule_id in (window["allows"] or []) and self._covers(window, agent):
                return f"maintenance window {window['id']} until {window['ends_at']:%Y-%m-%d %H:%M} UTC"
        return None


def in_force(conn: Connection, now: datetime) -> InForce:
    windows = (
        conn.execute(
            select(maintenance_windows).where(
                maintenance_windows.c.starts_at <= now,
                maintenance_windows.c.ends_at > now,
                maintenance_windows.c.cancelled_at.is_(None),
            )
        )
        .mappings()
        .all()
    )
    active = (
        conn.execute(select(waivers).where(waivers.c.expires_at > now, or_(waivers.c.revoked_at.is_(None))))
        .mappings()
        .all()
    )
    return InForce(list(windows), list(active))
