"""Maintenance windows and waivers in force: what they allow and whom they hold back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, List, Mapping, Optional

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from central.db.schema import agents, maintenance_windows, waivers

ENDED_LOOKBACK = timedelta(days=7)
"""How far back a window that allowed rules is remembered, to name it when its deviation stays."""


def window_span(window: Mapping[Any, Any]) -> str:
    """``maintenance window W from 2026-12-07 01:00 to 03:00 UTC (reason)``: its start and end."""
    start, end = window["starts_at"], window["ends_at"]
    until = f"{end:%H:%M}" if start.date() == end.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"maintenance window {window['id']} from {start:%Y-%m-%d %H:%M} to {until} UTC ({window['reason']})"


def ended_at(window: Mapping[Any, Any]) -> datetime:
    """When a window stopped: its end, or its cancellation if that came first."""
    cancelled: Optional[datetime] = window["cancelled_at"]
    end: datetime = window["ends_at"]
    return cancelled if cancelled is not None and cancelled < end else end


@dataclass(frozen=True)
class InForce:
    windows: List[Mapping[Any, Any]]
    waivers: List[Mapping[Any, Any]]
    ended: List[Mapping[Any, Any]] = field(default_factory=list)
    """Windows with ``allows`` that ended or were cancelled in the last :data:`ENDED_LOOKBACK`, newest first."""

    @staticmethod
    def _covers(row: Mapping[Any, Any], agent: Mapping[Any, Any]) -> bool:
        return (
            (row["agent_id"] is None or row["agent_id"] == agent["id"])
            and (row["group_name"] is None or row["group_name"] == agent["group_name"])
            and (row["tenant"] is None or row["tenant"] == agent["tenant"])
        )

    def covering(self) -> Optional[ColumnElement[bool]]:
        """Which nodes (not revoked) a window or waiver in force covers, as :meth:`_covers` decides, for
        a query of ``agents``: their open incidents may be held or accepted.  None: it covers none."""
        scopes = []
        for row in (*self.windows, *self.waivers):
            scope = [agents.c.revoked_at.is_(None)]
            for column, key in (
                (agents.c.id, "agent_id"),
                (agents.c.group_name, "group_name"),
                (agents.c.tenant, "tenant"),
            ):
                if row[key] is not None:
                    scope.append(column == row[key])
            scopes.append(and_(*scope))
        return or_(*scopes) if scopes else None

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
                return window_span(window)
        return None

    def ended_allowing(
        self, agent: Mapping[Any, Any], rule_id: str, since: Optional[datetime]
    ) -> Optional[Mapping[Any, Any]]:
        """The latest window that allowed ``rule_id`` on this node and ended while the deviation (failing
        since ``since``) was already there: the one whose end lets an incident open now."""
        for window in self.ended:
            allowed = rule_id in (window["allows"] or []) and self._covers(window, agent)
            if allowed and (since is None or ended_at(window) >= since):
                return window
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
    mw = maintenance_windows.c
    over = or_(mw.ends_at <= now, and_(mw.cancelled_at.is_not(None), mw.cancelled_at <= now))
    recent = or_(mw.ends_at > now - ENDED_LOOKBACK, mw.cancelled_at > now - ENDED_LOOKBACK)
    ended: List[Mapping[Any, Any]] = [
        w
        for w in conn.execute(select(maintenance_windows).where(over, recent, mw.starts_at <= now)).mappings()
        if w["allows"]
    ]
    ended.sort(key=ended_at, reverse=True)
    return InForce(list(windows), list(active), ended)
