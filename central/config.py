"""``central.yaml``: the centre's settings, checked whole before anything starts.

Built from an explicit file path and environment mapping (no import-time globals),
so tests and several replicas each get their own.  Errors name the file and key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import ArgumentError

from central.alerting.settings import CHANNEL_TYPES, Alerting
from central.db.engine import DatabaseURLError, normalise_url
from central.judging.own.settings import Measures

DEFAULT_PATH = Path("/etc/tillsyn/central.yaml")
DEFAULT_STATE = Path("/var/lib/tillsyn/central")  # apart from the agent's key in /var/lib/tillsyn


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and what."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=0, le=65535)
    tls_cert: Optional[Path] = None
    tls_key: Optional[Path] = None
    max_connections: int = Field(1000, ge=2, description="open connections at most; more are closed at once")
    head_timeout_s: float = Field(10.0, gt=0, description="time for a request line and headers to arrive")
    body_timeout_s: float = Field(30.0, gt=0, description="longest pause while a request body arrives")


class Limits(_Strict):
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="largest batch of reports accepted")
    max_api_body_bytes: int = Field(64 * 1024, ge=1024, description="largest body of any other request")
    max_reports_per_batch: int = Field(200, ge=1)
    clock_skew_s: int = Field(300, ge=0, description="how far in the future a node's clock may run")
    heartbeat_max_age_s: int = Field(600, ge=1, description="older heartbeats are refused as replays")


class Retention(_Strict):
    """How long things are kept (M08): a background duty deletes what is older and records it."""

    reports_days: int = Field(400, ge=1, description="raw signed reports (the ledger) and latest evidence")
    findings_history_days: int = Field(800, ge=1, description="finding changes and resolved incidents")
    audit_days: int = Field(2000, ge=30, description="the audit trail of people's actions")


class Sessions(_Strict):
    """Logins to the dashboard."""

    idle_minutes: int = Field(60, ge=5, description="a session ends after this long without use")
    max_hours: int = Field(12, ge=1, description="and at the latest this long after login")
    secure_cookie: bool = Field(True, description="cookies only over HTTPS (false only for a loopback centre)")
    max_failed_logins: int = Field(5, ge=1, description="wrong logins for one name from one address before a hold")
    max_failed_logins_per_address: int = Field(20, ge=1, description="wrong logins from one address, any names")
    lockout_minutes: int = Field(15, ge=1, description="how long a hold lasts, and the window the counts are kept")


class Health(_Strict):
    """When ``/healthz`` says ``degraded`` (docs/operations.md, Monitoring Tillsyn)."""

    duty_overdue_s: Optional[float] = Field(None, gt=0, description="default: 6 x duty_interval_s, at least 60 s")
    channel_failing_s: int = Field(900, ge=1, description="a channel failing this long degrades health")
    outbox_age_s: int = Field(900, ge=1, description="a notification waiting this long degrades health")

    def overdue_after(self, duty_interval_s: float) -> float:
        return self.duty_overdue_s or max(60.0, 6 * duty_interval_s)


class Metrics(_Strict):
    """Who may read ``/metrics`` (fleet-wide counts across tenants): docs/operations.md."""

    bearer_token_file: Optional[Path] = Field(None, description="a file holding the token Prometheus sends")
    loopback: bool = Field(True, description="requests from this machine need no token")


class CentralConfig(_Strict):
    state_dir: Path = DEFAULT_STATE
    database_url: Optional[str] = Field(None, description="default: SQLite in state_dir")
    policy: Optional[Path] = Field(None, description="default: /etc/tillsyn/policy.yaml, else the shipped policy")
    listen: Listen = Listen()
    limits: Limits = Limits()
    heartbeat_interval_s: int = Field(60, ge=5)
    silent_after_s: Optional[int] = Field(None, ge=10, description="default: 3 x heartbeat_interval_s")
    duty_interval_s: float = Field(10.0, gt=0)
    alerting: Alerting = Alerting()
    retention: Retention = Retention()
    sessions: Sessions = Sessions()
    health: Health = Health()
    metrics: Metrics = Metrics()
    measures: Measures = Measures()
    public_url: Optional[str] = Field(None, description="the centre's address for people, used in notification links")
    default_tenant: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9_.:-]{1,128}$",
        description="the tenant of a node enrolled with a token that names none (and of older such nodes)",
    )

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            try:
                normalise_url(value)
            except ArgumentError as err:
                raise ValueError("not a database URL: use sqlite:///PATH or postgresql://USER@HOST/DB") from err
            except DatabaseURLError as err:
                raise ValueError(str(err)) from err
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'central.db'}"

    @property
    def silent_threshold_s(self) -> int:
        return self.silent_after_s or 3 * self.heartbeat_interval_s


_ENV = {"state_dir": "TILLSYN_STATE_DIR", "database_url": "TILLSYN_DATABASE_URL", "policy": "TILLSYN_POLICY"}


def _channel_type(loc: Sequence[Any], i: int) -> bool:
    """Whether ``loc[i]`` is the channel type pydantic puts after a channel's name in an error's path."""
    return i >= 2 and loc[i - 2] == "channels" and loc[i] in CHANNEL_TYPES


def _key(loc: Sequence[Any]) -> str:
    """The dotted key of an error as central.yaml spells it."""
    return ".".join(str(p) for i, p in enumerate(loc) if not _channel_type(loc, i)) or "(top level)"


def _message(first: Mapping[str, Any], loc: Sequence[Any]) -> str:
    """pydantic's words for an error, as a sentence about central.yaml."""
    kind, ctx = first["type"], first.get("ctx") or {}
    kinds = ", ".join(CHANNEL_TYPES)
    if kind == "extra_forbidden":
        channel = next(
            (p for i, p in enumerate(loc) if i >= 2 and loc[i - 2] == "channels" and p in CHANNEL_TYPES), None
        )
        return f"unknown setting for a {channel} channel" if channel else "unknown setting"
    if kind == "missing":
        return "is required"
    if kind == "union_tag_not_found":
        return f"a channel needs 'type' (one of {kinds})"
    if kind == "union_tag_invalid":
        return f"unknown channel type {ctx.get('tag')!r} (one of {kinds})"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    return str(first["msg"]).removeprefix("Value error, ")


def _describe(err: ValidationError, from_env: Mapping[str, str]) -> str:
    first = err.errors()[0]
    key = _key(first["loc"])
    message = _message(first, first["loc"])
    origin = f" (from ${from_env[key]})" if key in from_env else ""
    more = len(err.errors()) - 1
    return f"{key}{origin}: {message}" + (f" (and {more} more)" if more else "")


def from_mapping(data: Any, source: str, env: Mapping[str, str]) -> CentralConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top, got {type(data).__name__}")
    data = dict(data)
    from_env = {key: var for key, var in _ENV.items() if env.get(var)}
    for key, var in from_env.items():
        data[key] = env[var]
    try:
        return CentralConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_describe(err, from_env)}") from err


def load(flag: Optional[str], env: Mapping[str, str]) -> CentralConfig:
    """``--config``, else ``$TILLSYN_CENTRAL_CONFIG``, else /etc/tillsyn/central.yaml if present."""
    explicit = flag or env.get("TILLSYN_CENTRAL_CONFIG")
    path = Path(explicit) if explicit else DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such file (see config/central.yaml for an example)") from None
        return from_mapping({}, "built-in defaults", env)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(err, 'problem', err)}") from err
    except RecursionError as err:  # the YAML parser recurses once per level of nesting
        raise ConfigError(f"{path}: not a configuration: nested too deeply") from err
    return from_mapping(data, str(path), env)
