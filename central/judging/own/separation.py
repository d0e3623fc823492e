"""M10 separation: every node belongs to a tenant; people see only the tenants granted to them;
only administrators hold ``*`` (every tenant).  Pure: judged from rows the caller read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence

from central.judging.own.rules import SEPARATION
from evidence.rules import Result, Verdict

ALL = "*"


@dataclass(frozen=True)
class Person:
    username: str
    role: str
    tenants: Sequence[str]

    @property
    def everything(self) -> bool:
        return ALL in self.tenants

    def sees(self, tenant: Optional[str]) -> bool:
        return self.everything or (tenant is not None and tenant in self.tenants)

    def shown(self) -> str:
        return f"{self.username} ({self.role}{', every tenant' if self.everything else ''})"


def people_of(rows: Sequence[Mapping[Any, Any]]) -> List[Person]:
    """The enabled accounts (a disabled one sees nothing)."""
    return [Person(r["username"], r["role"], list(r["tenants"] or [])) for r in rows if r["disabled_at"] is None]


def _names(people: Sequence[Person]) -> str:
    return ", ".join(p.shown() for p in people) if people else "nobody"


def judge(hostname: str, tenant: Optional[str], people: Sequence[Person]) -> Result:
    wide = [p for p in people if p.everything and p.role != "admin"]
    seen_by = [p for p in people if p.sees(tenant)]
    observed = {
        "tenant": tenant,
        "seen_by": [{"username": p.username, "role": p.role, "every_tenant": p.everything} for p in seen_by],
        "every_tenant_not_admin": [p.username for p in wide],
        # every node fails for the same reason: the round opens one incident for it, not one per node
        "centre_wide": bool(wide) and tenant is not None,
    }
    problems = []
    if tenant is None:
        problems.append(f"node {hostname} belongs to no tenant")
    if wide:
        problems.append(f"{_names(wide)} {'sees' if len(wide) == 1 else 'see'} every tenant without being an admin")
    if problems:
        return Result(SEPARATION, Verdict.FAILING, observed, "; ".join(problems))
    message = f"node {hostname} belongs to tenant {tenant}, seen by {_names(seen_by)}"
    return Result(SEPARATION, Verdict.PASSING, observed, message)
