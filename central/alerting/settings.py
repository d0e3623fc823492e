"""The ``alerting`` section of central.yaml: timings, channels and routes."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

SEVERITIES = ("info", "low", "medium", "high", "critical")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channel(_Strict):
    """Where notifications go.  Secrets come from files (``*_file``), never from this file."""

    type: Literal["email", "webhook", "slack", "teams", "pagerduty", "alertmanager"]
    # email
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    starttls: bool = True
    username: Optional[str] = None
    password_file: Optional[Path] = None
    sender: str = "tillsyn@localhost"
    to: List[str] = Field(default_factory=list)
    # webhook, slack, teams, pagerduty, alertmanager
    url: Optional[str] = None
    secret_file: Optional[Path] = Field(None, description="webhook: HMAC-SHA256 key for X-Tillsyn-Signature")
    routing_key_file: Optional[Path] = Field(None, description="pagerduty: the integration's routing key")
    ca_file: Optional[Path] = None
    timeout_s: float = Field(10.0, gt=0, le=120)
    resend_s: Optional[int] = Field(
        None, ge=10, description="alertmanager: re-send open incidents this often (default 60 s)"
    )

    @model_validator(mode="after")
    def _complete(self) -> Channel:
        if self.type == "email" and not self.to:
            raise ValueError("an email channel needs 'to' (one or more addresses)")
        if self.type != "email" and not self.url and self.type != "pagerduty":
            raise ValueError(f"a {self.type} channel needs 'url'")
        if self.type == "pagerduty" and self.routing_key_file is None:
            raise ValueError("a pagerduty channel needs 'routing_key_file'")
        return self


class Match(_Strict):
    """An incident matches when every given key matches (lists: any of)."""

    severity: Optional[List[Literal["info", "low", "medium", "high", "critical"]]] = None
    controls: Optional[List[str]] = None
    rules: Optional[List[str]] = None
    tenant: Optional[List[str]] = None
    group: Optional[List[str]] = None
    labels: Dict[str, str] = Field(default_factory=dict)


class Route(_Strict):
    match: Match = Match()
    channels: List[str]
    repeat_interval_s: Optional[int] = Field(None, ge=60, description="remind while open; default alerting's")
    stop: bool = Field(True, description="stop at the first matching route (false: go on to the next)")


class Alerting(_Strict):
    open_after_s: int = Field(0, ge=0, description="a deviation must last this long before an incident opens")
    resolve_after_s: int = Field(60, ge=0, description="a fix must last this long before the incident resolves")
    stale_incidents: bool = Field(True, description="open incidents for stale evidence too")
    repeat_interval_s: int = Field(4 * 3600, ge=60, description="remind on-call of incidents still open")
    dispatch_interval_s: float = Field(2.0, gt=0, description="how often the outbox is worked")
    retry_max_s: int = Field(600, ge=5, description="longest wait between attempts of a failing channel")
    channels: Dict[str, Channel] = Field(default_factory=dict)
    routes: List[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _routes_name_channels(self) -> Alerting:
        for index, route in enumerate(self.routes):
            for name in route.channels:
                if name not in self.channels:
                    raise ValueError(f"routes[{index}] names channel {name!r}, which is not defined under channels")
        return self
