"""Who is asking, with what role, for which tenants; checks used by pages, API and exports alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, FrozenSet, Iterable, Optional

from sqlalchemy import false

ROLES = ("viewer", "operator", "admin")
"""viewer reads; operator also acknowledges incidents and declares maintenance windows; admin also
manages tokens, waivers, policy and people."""
ALL_TENANTS = "*"


@dataclass(frozen=True)
class Principal:
    username: str
    role: str
    tenants: Optional[FrozenSet[str]]
    """The tenants this person may see; None means every tenant (and nodes without one)."""
    actor: str
    """How the audit trail names them: ``user:alice`` or ``apikey:deploy-script``."""
    csrf: Optional[str] = None
    """The session's CSRF token (dashboard sessions only)."""

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def sees(self, tenant: Optional[str]) -> bool:
        return self.tenants is None or (tenant is not None and tenant in self.tenants)

    def tenant_filter(self, column: Any) -> Any:
        """A SQL condition on a tenant column limiting rows to what this person may see (or None)."""
        if self.tenants is None:
            return None
        return column.in_(sorted(self.tenants)) if self.tenants else false()


def tenants_of(granted: Iterable[str]) -> Optional[FrozenSet[str]]:
    values = frozenset(granted)
    return None if ALL_TENANTS in values else values
