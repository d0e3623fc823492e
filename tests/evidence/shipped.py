"""Judge collector output with the shipped config/policy.yaml, as the centre would."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from evidence.model import Outcome, utc_iso
from evidence.policy import Policy, parse_policy
from evidence.rules import Result, evaluate

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"


def shipped_policy() -> Policy:
    return parse_policy(SHIPPED.read_text(), str(SHIPPED))


def record_of(outcome: Union[Outcome, Mapping[str, Any]], at: datetime) -> Dict[str, Any]:
    """The stored record of an :class:`Outcome` (or of its JSON: status, observed, gaps)."""
    if isinstance(outcome, Outcome):
        outcome = {
            "status": outcome.status.value,
            "observed": outcome.observed,
            "gaps": [g.to_dict() for g in outcome.gaps],
            "error": outcome.error,
        }
    return {"collected_at": utc_iso(at), "error": None, **outcome}


def judge(
    collector: str, outcome: Union[Outcome, Mapping[str, Any]], at: Optional[datetime] = None
) -> Dict[str, Result]:
    """Every shipped rule of ``collector`` on this outcome, collected and judged at ``at`` (now)."""
    at = at or datetime.now(timezone.utc)
    record = record_of(outcome, at)
    return {r.id: evaluate(r, record, at) for r in shipped_policy().rules if r.collector == collector}


def judge_shipped(
    collector: str, outcome: Union[Outcome, Mapping[str, Any]], at: Optional[datetime] = None
) -> Dict[str, str]:
    """Verdict names by rule id (``{"ports-no-exposed-database": "unknown", ...}``)."""
    return {rule_id: result.verdict.value for rule_id, result in judge(collector, outcome, at).items()}
