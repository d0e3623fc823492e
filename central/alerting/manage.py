"""Maintenance windows, waivers and acknowledgements: created by people, recorded with who."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, and_, select, update

from central import audit
from central.alerting.incidents import acknowledge
from central.db.schema import agents, incident_events, incidents, maintenance_windows, waivers
from central.ids import new_id


class ManageError(ValueError):
    """A request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Scope:
    agent_id: Optional[str] = None
    group: Optional[str] = None
    tenant: Optional[str] = None

    def check(self, conn: Connection) -> None:
        if not (self.agent_id or self.group or self.tenant):
            raise ManageError("name a node (agent_id), a group or a tenant")
        if self.agent_id and conn.execute(select(agents.c.id).where(agents.c.id == self.agent_id)).first() is None:
            raise ManageError(f"no node {self.agent_id!r}")


def create_window(
    conn: Connection,
    now: datetime,
    actor: str,
    scope: Scope,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    allows: List[str],
    source: Optional[str] = None,
) -> str:
    scope.check(conn)
    if ends_at <= starts_at:
        raise ManageError("a maintenance window must end after it starts")
    if ends_at <= now:
        raise ManageError("that window is already over")
    if not reason.strip():
        raise ManageError("say why (reason): it is shown on the findings and kept in the audit trail")
    window_id = new_id()
    conn.execute(
        maintenance_windows.insert().values(
            id=window_id,
            agent_id=scope.agent_id,
            group_name=scope.group,
            tenant=scope.tenant,
            starts_at=starts_at,
            ends_at=ends_at,
            allows=list(allows),
            reason=reason,
            created_by=actor,
            created_at=now,
        )
    )
    audit.record(
        conn,
        now,
        actor,
        "window.create",
        window_id,
        {
            "agent_id": scope.agent_id,
            "group": scope.group,
            "tenant": scope.tenant,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "allows": list(allows),
            "reason": reason,
        },
        source,
    )
    return window_id


def cancel_window(conn: Connection, now: datetime, actor: str, window_id: str, source: Optional[str] = None) -> None:
    done = conn.execute(
        update(maintenance_windows)
        .where(and_(maintenance_windows.c.id == window_id, maintenance_windows.c.cancelled_at.is_(None)))
        .values(cancelled_at=now, cancelled_by=actor)
    )
    if not done.rowcount:
        raise ManageError(f"no active maintenance window {window_id!r}")
    audit.record(conn, now, actor, "window.cancel", window_id, None, source)


def create_waiver(
    conn: Connection,
    now: datetime,
    actor: str,
    scope: Scope,
    rule_id: str,
    justification: str,
    approver: str,
    expires_at: datetime,
    source: Optional[str] = None,
) -> str:
    scope.check(conn)
    if expires_at <= now:
        raise ManageError("a waiver must expire in the future")
    if not justification.strip() or not approver.strip():
        raise ManageError("a waiver needs a justification and an approver")
    waiver_id = new_id()
    conn.execute(
        waivers.insert().values(
            id=waiver_id,
            agent_id=scope.agent_id,
            group_name=scope.group,
            tenant=scope.tenant,
            rule_id=rule_id,
            justification=justification,
            approver=approver,
            created_by=actor,
            created_at=now,
            expires_at=expires_at,
        )
    )
    audit.record(
        conn,
        now,
        actor,
        "waiver.create",
        waiver_id,
        {
            "agent_id": scope.agent_id,
            "group": scope.group,
            "tenant": scope.tenant,
            "rule_id": rule_id,
            "justification": justification,
            "approver": approver,
            "expires_at": expires_at.isoformat(),
        },
        source,
    )
    return waiver_id


def revoke_waiver(conn: Connection, now: datetime, actor: str, waiver_id: str, source: Optional[str] = None) -> None:
    done = conn.execute(
        update(waivers)
        .where(and_(waivers.c.id == waiver_id, waivers.c.revoked_at.is_(None)))
        .values(revoked_at=now, revoked_by=actor)
    )
    if not done.rowcount:
        raise ManageError(f"no active waiver {waiver_id!r}")
    audit.record(conn, now, actor, "waiver.revoke", waiver_id, None, source)


def ack(
    conn: Connection,
    now: datetime,
    actor: str,
    incident_id: int,
    note: Optional[str] = None,
    source: Optional[str] = None,
) -> None:
    row = conn.execute(
        select(incidents.c.status, incidents.c.acknowledged_by).where(incidents.c.id == incident_id)
    ).first()
    if row is None:
        raise ManageError(f"no incident {incident_id}")
    if not acknowledge(conn, incident_id, actor, now, note):
        raise ManageError(f"incident {incident_id} was already acknowledged by {row.acknowledged_by}")
    audit.record(conn, now, actor, "incident.ack", str(incident_id), {"note": note} if note else None, source)


def list_incidents(
    conn: Connection, status: Optional[str] = None, agent_id: Optional[str] = None, limit: int = 1000
) -> List[Dict[str, Any]]:
    query = (
        select(incidents, agents.c.hostname, agents.c.tenant)
        .join(agents, agents.c.id == incidents.c.agent_id)
        .order_by(incidents.c.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(incidents.c.status == status)
    if agent_id:
        query = query.where(incidents.c.agent_id == agent_id)
    return [dict(r) for r in conn.execute(query).mappings()]


def timeline(conn: Connection, incident_id: int) -> List[Dict[str, Any]]:
    rows = conn.execute(
        select(incident_events).where(incident_events.c.incident_id == incident_id).order_by(incident_events.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def list_windows(conn: Connection) -> List[Dict[str, Any]]:
    rows = conn.execute(
        select(maintenance_windows, agents.c.tenant.label("node_tenant"))
        .outerjoin(agents, agents.c.id == maintenance_windows.c.agent_id)
        .order_by(maintenance_windows.c.starts_at.desc())
    ).mappings()
    return [dict(r) for r in rows]


def list_waivers(conn: Connection) -> List[Dict[str, Any]]:
    rows = conn.execute(
        select(waivers, agents.c.tenant.label("node_tenant"))
        .outerjoin(agents, agents.c.id == waivers.c.agent_id)
        .order_by(waivers.c.created_at.desc())
    ).mappings()
    return [dict(r) for r in rows]
