"""The ``measures`` section of central.yaml: targets of the centre's own measures."""

from __future__ import annotations

from typing import Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

SEVERITIES = ("info", "low", "medium", "high", "critical")
GDPR_72H_S = 72 * 3600
"""GDPR Art. 33: a personal-data breach is notified to the authority within 72 hours; here the
default acknowledgement target of ``critical`` incidents."""


class Measures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period_days: int = Field(30, ge=1, le=400, description="M12 judges the incidents detected in this period")
    notify_within_s: int = Field(900, ge=10, description="M12: an incident's first notification within this")
    acknowledge_within_s: Dict[str, int] = Field(
        default_factory=lambda: {"critical": GDPR_72H_S},
        description="M12: acknowledgement targets by severity (severities not named have none)",
    )
    judge_every_s: Optional[float] = Field(
        None,
        gt=0,
        description="how often the duty round judges these measures; default 6 x duty_interval_s (60 s)",
    )
    pseudonyms_optional: List[str] = Field(
        default_factory=list,
        description="M13: tenants whose policy does not ask for pseudonyms (every other tenant does)",
    )

    @field_validator("acknowledge_within_s")
    @classmethod
    def _severities(cls, value: Dict[str, int]) -> Dict[str, int]:
        for severity, seconds in value.items():
            if severity not in SEVERITIES:
                raise ValueError(f"{severity!r} is not a severity (one of {', '.join(SEVERITIES)})")
            if seconds < 60:
                raise ValueError(f"{severity}: a target under 60 s cannot be met by a person")
        return value

    def judge_every(self, duty_interval_s: float) -> float:
        """Seconds between judgements: each reads every node's findings and the period's incidents,
        and their targets are minutes (notification) to days (retention, erasure), so every sixth
        duty round is soon enough and keeps the rounds of a large fleet short."""
        return self.judge_every_s or 6 * duty_interval_s
