"""What an export covers, and how times and values are written in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Optional

FORMAT = "tillsyn-audit-export/1"
"""Bumped when a field changes meaning or goes away; new fields may appear within a version."""


class ExportError(ValueError):
    """The export cannot be made or read as asked; the message says why."""


def iso(moment: Optional[datetime]) -> Optional[str]:
    """UTC, second precision or finer, with a Z: the one time form in an export."""
    if moment is None:
        return None
    text = moment.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


FIRST_YEAR, LAST_YEAR = 1971, 8999
"""An export speaks of years a centre can have kept evidence of; reading back from a moment
(retention, a period) and a zone's offset must stay within the calendar."""


def parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError) as err:
        raise ExportError(f"{what}: {text!r} is not a time such as 2026-11-27T22:00:00Z") from err
    if moment.tzinfo is None:
        raise ExportError(f"{what}: {text!r} has no zone; add Z or +01:00")
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ExportError(f"{what}: {text!r} is out of range (years {FIRST_YEAR} to {LAST_YEAR})")
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class Request:
    """A tenant (None: every node) and either a moment (``start`` None) or a period ``start``..``end``."""

    end: datetime
    start: Optional[datetime] = None
    tenant: Optional[str] = None
    with_evidence: bool = False

    def __post_init__(self) -> None:
        if self.start is not None and self.start >= self.end:
            raise ExportError("the period must start before it ends")

    @property
    def mode(self) -> str:
        return "point" if self.start is None else "range"

    @property
    def first(self) -> datetime:
        """The earliest moment the export speaks about."""
        return self.start if self.start is not None else self.end

    def scope(self) -> Dict[str, Any]:
        return {
            "tenant": self.tenant,
            "mode": self.mode,
            "at": iso(self.end) if self.start is None else None,
            "from": iso(self.start),
            "to": iso(self.end) if self.start is not None else None,
            "with_evidence": self.with_evidence,
        }

    @classmethod
    def from_scope(cls, scope: Any) -> Request:
        """The request an export was made from (to rebuild it for verification)."""
        if not isinstance(scope, dict) or scope.get("mode") not in ("point", "range"):
            raise ExportError("export has no valid 'scope'")
        if scope["mode"] == "point":
            return cls(
                parse_time(str(scope.get("at")), "scope.at"),
                None,
                scope.get("tenant"),
                bool(scope.get("with_evidence")),
            )
        return cls(
            parse_time(str(scope.get("to")), "scope.to"),
            parse_time(str(scope.get("from")), "scope.from"),
            scope.get("tenant"),
            bool(scope.get("with_evidence")),
        )
