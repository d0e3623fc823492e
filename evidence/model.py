"""The evidence record: facts a collector observed on a node, never a verdict.

A record says what was seen (``observed``), how completely (``status``) and, for
everything that could not be seen, what and why (``gaps``).  Unknown is never
passing: a rule reading a field that is missing must treat it as unknown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Tuple

FORMAT_VERSION = 1


class Status(str, enum.Enum):
    """How completely a collector saw what it looks for."""

    COMPLETE = "complete"
    """Everything the collector looks for was readable."""
    PARTIAL = "partial"
    """Some facts could not be seen; ``gaps`` names each and why."""
    NOT_PRESENT = "not_present"
    """The thing does not exist on this node (e.g. no UPS software)."""
    ERROR = "error"
    """The collector failed; ``error`` says why.  Its facts are not to be trusted."""


@dataclass(frozen=True)
class Gap:
    """One thing a collector could not see, and why ("not root: cannot read ...")."""

    what: str
    reason: str

    def to_dict(self) -> Dict[str, str]:
        return {"what": self.what, "reason": self.reason}


@dataclass
class Outcome:
    """What a collector function returns; the agent wraps it into an :class:`Evidence`."""

    status: Status
    observed: Dict[str, Any] = field(default_factory=dict)
    gaps: List[Gap] = field(default_factory=list)
    error: Optional[str] = None

    @classmethod
    def not_present(cls, reason: str, **observed: Any) -> Outcome:
        return cls(Status.NOT_PRESENT, dict(observed), [Gap("everything", reason)])

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls(Status.ERROR, {}, [], reason)

    @classmethod
    def from_parts(cls, observed: Dict[str, Any], gaps: List[Gap]) -> Outcome:
        """COMPLETE when nothing is missing, PARTIAL otherwise."""
        return cls(Status.PARTIAL if gaps else Status.COMPLETE, observed, list(gaps))


def utc_iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, second precision or finer."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: evidence times must carry a time zone")
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """Inverse of :func:`utc_iso` (accepts any RFC 3339 offset)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time without zone: {text!r}")
    try:
        return value.astimezone(timezone.utc)
    except OverflowError as err:  # e.g. 0001-01-01T00:00:00+05:00 has no UTC form
        raise ValueError(f"time out of range: {text!r}") from err


@dataclass(frozen=True)
class Evidence:
    """One collector run on one node."""

    collector: str
    collector_version: str
    controls: Tuple[str, ...]
    collected_at: datetime
    duration_ms: float
    status: Status
    observed: Mapping[str, Any]
    gaps: Tuple[Gap, ...] = ()
    error: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "collector": self.collector,
            "collector_version": self.collector_version,
            "controls": list(self.controls),
            "collected_at": utc_iso(self.collected_at),
            "duration_ms": round(self.duration_ms, 3),
            "status": self.status.value,
            "observed": dict(self.observed),
            "gaps": [g.to_dict() for g in self.gaps],
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """Rebuild a record; raises ``ValueError`` naming the first bad field."""
        try:
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"unsupported evidence format {data.get('format')!r}")
            observed = data["observed"]
            if not isinstance(observed, dict):
                raise ValueError("observed must be an object")
            if not isinstance(data["controls"], list) or not isinstance(data["gaps"], list):
                raise ValueError("controls and gaps must be lists")
            gaps = tuple(Gap(str(g["what"]), str(g["reason"])) for g in data["gaps"])
            error = data.get("error")
            return cls(
                collector=str(data["collector"]),
                collector_version=str(data["collector_version"]),
                controls=tuple(str(c) for c in data["controls"]),
                collected_at=parse_utc(str(data["collected_at"])),
                duration_ms=float(data["duration_ms"]),
                status=Status(data["status"]),
                observed=observed,
                gaps=gaps,
                error=None if error is None else str(error),
            )
        except KeyError as err:
            raise ValueError(f"evidence lacks field {err.args[0]!r}") from err
        except TypeError as err:
            raise ValueError(f"evidence has a field of the wrong type: {err}") from err
