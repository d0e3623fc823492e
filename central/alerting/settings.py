"""The ``alerting`` section of central.yaml: timings, channels and routes.

Each kind of channel is its own model with only its own keys (a discriminated union on ``type``),
and says what it needs of the incident loop: Alertmanager forgets an alert that is not re-sent
(:meth:`keep_firing_s`) and takes no reminders; every other kind is reminded while an incident stays
open and unacknowledged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Dict, List, Literal, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

SEVERITIES = ("info", "low", "medium", "high", "critical")
CHANNEL_TYPES = ("email", "webhook", "slack", "teams", "pagerduty", "alertmanager")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Channel(_Strict):
    """What every channel has.  Secrets come from files (``*_file``), never from central.yaml."""

    ca_file: Optional[Path] = None
    timeout_s: float = Field(10.0, gt=0, le=120)
    takes_reminders: ClassVar[bool] = True
    """Whether a still-open, unacknowledged incident is repeated to it every ``repeat_interval_s``."""

    def keep_firing_s(self) -> Optional[int]:
        """How often an open incident must be re-sent so the receiver keeps it (None: never)."""
        return None


class EmailChannel(_Channel):
    type: Literal["email"] = "email"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    starttls: bool = True
    username: Optional[str] = None
    password_file: Optional[Path] = None
    sender: str = "tillsyn@localhost"
    to: List[str] = Field(min_length=1, description="one or more addresses")


class WebhookChannel(_Channel):
    type: Literal["webhook"] = "webhook"
    url: str
    secret_file: Optional[Path] = Field(None, description="HMAC-SHA256 key for X-Tillsyn-Signature")


class SlackChannel(_Channel):
    type: Literal["slack"] = "slack"
    url: str


class TeamsChannel(_Channel):
    type: Literal["teams"] = "teams"
    url: str


class PagerDutyChannel(_Channel):
    type: Literal["pagerduty"] = "pagerduty"
    url: Optional[str] = Field(None, description="the Events API v2 endpoint (default PagerDuty's own)")
    routing_key_file: Path = Field(description="the integration's routing key")


class AlertmanagerChannel(_Channel):
    type: Literal["alertmanager"] = "alertmanager"
    url: str
    resend_s: Optional[int] = Field(None, ge=10, description="re-send open incidents this often (default 60 s)")
    takes_reminders: ClassVar[bool] = False

    def keep_firing_s(self) -> Optional[int]:
        return self.resend_s or 60


Channel = Annotated[
    Union[EmailChannel, WebhookChannel, SlackChannel, TeamsChannel, PagerDutyChannel, AlertmanagerChannel],
    Field(discriminator="type"),
]
"""Where notifications go: one model per ``type``."""

_CHANNEL: TypeAdapter[Channel] = TypeAdapter(Channel)


def parse_channel(data: Mapping[str, Any]) -> Channel:
    """One channel's settings (as under ``alerting.channels.NAME``), its model chosen by ``type``."""
    return _CHANNEL.validate_python(data)


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

    def soonest_due_s(self) -> int:
        """The shortest time after which any channel can be due again for an open incident."""
        intervals = [self.repeat_interval_s]
        intervals += [r.repeat_interval_s for r in self.routes if r.repeat_interval_s is not None]
        intervals += [s for s in (c.keep_firing_s() for c in self.channels.values()) if s is not None]
        return min(intervals)
