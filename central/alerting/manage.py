"""Maintenance windows, waivers and acknowledgements: created by people, recorded with who."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional

from sqlalchemy import Connection, Select, Table, and_, func, select, update

from central import audit
from central.alerting.incidents import acknowledge
from central.db.schema import agents, incident_events, incidents, maintenance_windows, waivers
from central.identifiers import new_id


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


NOWHERE = Scope(tenant="\x00none")
"""The scope of a window or waiver that does not exist: inside no one's tenants, so refused as outside."""


def scope_of(conn: Connection, kind: str, item_id: str) -> Scope:
    """The scope of window or waiver ``item_id`` (``kind``: ``window`` or ``waiver``), for the tenant check
    before it is ended; :data:`NOWHERE` when there is none."""
    table = maintenance_windows if kind == "window" else waivers
    columns = (table.c.agent_id, table.c.group_name, table.c.tenant)
    row = conn.execute(select(*columns).where(table.c.id == item_id)).first()
    return NOWHERE if row is None else Scope(row.agent_id, row.group_name, row.tenant)


def create_window(  # noqa: PLR0913  a window's fields as the CLI, API and dashboard give them
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
    return _create(
        conn,
        maintenance_windows,
        "window.create",
        now,
        actor,
        scope,
        {"starts_at": starts_at, "ends_at": ends_at, "allows": list(allows), "reason": reason},
        source,
    )


def cancel_window(conn: Connection, now: datetime, actor: str, window_id: str, source: Optional[str] = None) -> None:
    _end(conn, _CANCEL_WINDOW, now, actor, window_id, source)


def _create(
    conn: Connection,
    table: Table,
    action: str,
    now: datetime,
    actor: str,
    scope: Scope,
    values: Dict[str, Any],
    source: Optional[str],
) -> str:
    """A new window or waiver for ``scope``, with who made it, and its audit entry (times as ISO text)."""
    new = new_id()
    conn.execute(
        table.insert().values(
            id=new,
            agent_id=scope.agent_id,
            group_name=scope.group,
            tenant=scope.tenant,
            created_by=actor,
            created_at=now,
            **values,
        )
    )
    shown = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
    detail = {"agent_id": scope.agent_id, "group": scope.group, "tenant": scope.tenant, **shown}
    audit.record(conn, now, actor, action, new, detail, source)
    return new


@dataclass(frozen=True)
class _Ending:
    """How a window or waiver still in force is ended: its table, the columns' prefix, the audit
    action and what a person calls it."""

    table: Table
    ended: str
    action: str
    what: str


_CANCEL_WINDOW = _Ending(maintenance_windows, "cancelled", "window.cancel", "maintenance window")
_REVOKE_WAIVER = _Ending(waivers, "revoked", "waiver.revoke", "waiver")


def _end(conn: Connection, ending: _Ending, now: datetime, actor: str, row_id: str, source: Optional[str]) -> None:
    """Cancel or revoke a window or waiver still in force."""
    table, ended = ending.table, ending.ended
    done = conn.execute(
        update(table)
        .where(and_(table.c.id == row_id, table.c[f"{ended}_at"].is_(None)))
        .values({f"{ended}_at": now, f"{ended}_by": actor})
    )
    if not done.rowcount:
        raise ManageError(f"no active {ending.what} {row_id!r}")
    audit.record(conn, now, actor, ending.action, row_id, None, source)


def create_waiver(  # noqa: PLR0913  a waiver's fields as the CLI, API and dashboard give them
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
    return _create(
        conn,
        waivers,
        "waiver.create",
        now,
        actor,
        scope,
        {"rule_id": rule_id, "justification": justification, "approver": approver, "expires_at": expires_at},
        source,
    )


def revoke_waiver(conn: Connection, now: datetime, actor: str, waiver_id: str, source: Optional[str] = None) -> None:
    _end(conn, _REVOKE_WAIVER, now, actor, waiver_id, source)


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


Visible = Callable[[Any], Any]
"""A tenant condition on a tenant column (``Principal.tenant_filter``): None for every tenant."""


def _incidents(visible: Optional[Visible]) -> Select[Any]:
    query = select(incidents, agents.c.hostname, agents.c.tenant).join(agents, agents.c.id == incidents.c.agent_id)
    condition = None if visible is None else visible(agents.c.tenant)
    return query if condition is None else query.where(condition)


def list_incidents(
    conn: Connection,
    status: Optional[str] = None,
    agent_id: Optional[str] = None,
    limit: int = 1000,
    *,
    before: Optional[int] = None,
    visible: Optional[Visible] = None,
) -> List[Dict[str, Any]]:
    """The newest ``limit`` incidents, newest first, filtered in the query (never after the limit):
    by status, node, tenants (``visible``) and, for the next page, ids below ``before``."""
    query = _incidents(visible).order_by(incidents.c.id.desc()).limit(limit)
    if status:
        query = query.where(incidents.c.status == status)
    if agent_id:
        query = query.where(incidents.c.agent_id == agent_id)
    if before is not None:
        query = query.where(incidents.c.id < before)
    return [dict(r) for r in conn.execute(query).mappings()]


def count_incidents(conn: Connection, visible: Optional[Visible] = None) -> Dict[str, int]:
    """How many incidents there are by status (of the tenants ``visible`` lets through)."""
    inner = _incidents(visible).subquery()
    rows = conn.execute(select(inner.c.status, func.count()).group_by(inner.c.status)).all()
    return {str(status): int(n) for status, n in rows}


def get_incident(conn: Connection, incident_id: int, visible: Optional[Visible] = None) -> Optional[Dict[str, Any]]:
    """One incident with its timeline; None when there is none (or not of a tenant ``visible`` passes)."""
    row = conn.execute(_incidents(visible).where(incidents.c.id == incident_id)).mappings().first()
    if row is None:
        return None
    return {**dict(row), "timeline": timeline(conn, incident_id)}


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
