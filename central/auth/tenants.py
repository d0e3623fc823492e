"""Acting only on one's own tenants (M10): the check the API and the dashboard share before a write."""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import select

from central.alerting import manage
from central.auth.principal import Principal
from central.db.schema import agents
from central.db.schema import incidents as incidents_table


def within_tenants(conn: Any, person: Principal, scope: Optional[manage.Scope], incident_id: Optional[int]) -> None:
    """People act only on their own tenants' nodes (M10): another tenant's node is as absent as none."""
    if person.tenants is None:
        return
    if incident_id is not None:
        row = conn.execute(
            select(agents.c.tenant)
            .join(incidents_table, incidents_table.c.agent_id == agents.c.id)
            .where(incidents_table.c.id == incident_id)
        ).first()
        if row is None or not person.sees(row.tenant):
            raise manage.ManageError(f"no incident {incident_id}")
    if scope is not None:
        if scope.agent_id:
            row = conn.execute(select(agents.c.tenant).where(agents.c.id == scope.agent_id)).first()
            if row is None or not person.sees(row.tenant):
                raise manage.ManageError(f"no node {scope.agent_id!r}")
        elif not (scope.tenant and person.sees(scope.tenant)):
            raise manage.ManageError("name one of your nodes or tenants (a group may span other tenants)")
