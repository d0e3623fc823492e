"""The alerting pipeline as the database sees it: outbox, channels, incidents, findings, agents.

Read at scrape time (``/metrics``) and by ``/healthz``, by every replica alike: these numbers
come from the shared database, so each replica reports the same values.  One read transaction
of five grouped queries, and the answer is kept ``max_age_s`` seconds so that several scrapers
and health probes cost one read between them.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, Iterable, Optional, Tuple

from sqlalchemy import Connection, Engine, and_, case, func, select

from central.clock import utcnow
from central.db.engine import read_tx
from central.db.schema import agents, findings, incidents, outbox
from evidence.policy import Policy

MAX_VERSIONS = 30
"""Agent versions listed by name; the rarer ones are counted together as ``other`` (a bounded label set)."""


@dataclass
class Channel:
    waiting: int = 0
    oldest_waiting_s: float = 0.0
    failing_s: float = 0.0
    """How long its oldest notification that failed at least once has been waiting (0: not failing)."""
    last_error: str = ""
    since_delivery_s: Optional[float] = None
    """Seconds since its last successful delivery still in the outbox (None: none)."""


@dataclass
class Pipeline:
    channels: Dict[str, Channel] = field(default_factory=dict)
    open_incidents: Dict[str, int] = field(default_factory=dict)
    findings: Dict[Tuple[str, str], int] = field(default_factory=dict)
    """Findings by (control, status); a finding of a rule with two controls counts under both."""
    agent_versions: Dict[str, int] = field(default_factory=dict)


def _aware(moment: Optional[datetime]) -> Optional[datetime]:
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite through an aggregate gives text
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _seconds(now: datetime, moment: Optional[datetime]) -> Optional[float]:
    aware = _aware(moment)
    return None if aware is None else max(0.0, (now - aware).total_seconds())


def _channels(conn: Connection, configured: Iterable[str], now: datetime) -> Dict[str, Channel]:
    out = {name: Channel() for name in configured}
    waiting = outbox.c.sent_at.is_(None)
    failed = and_(waiting, outbox.c.last_error.is_not(None))
    query = select(
        outbox.c.channel,
        func.count(case((waiting, 1))),
        func.min(case((waiting, outbox.c.created_at))),
        func.min(case((failed, outbox.c.created_at))),
        func.max(outbox.c.sent_at),
    ).group_by(outbox.c.channel)
    for name, count, oldest, failing_since, last_sent in conn.execute(query):
        channel = out.setdefault(name, Channel())
        channel.waiting = int(count)
        channel.oldest_waiting_s = _seconds(now, oldest) or 0.0
        channel.failing_s = _seconds(now, failing_since) or 0.0
        channel.since_delivery_s = _seconds(now, last_sent)
    for name, error in conn.execute(
        select(outbox.c.channel, func.max(outbox.c.last_error)).where(failed).group_by(outbox.c.channel)
    ):
        out[name].last_error = str(error)[:200]
    return out


def _findings(conn: Connection, policy: Policy) -> Dict[Tuple[str, str], int]:
    controls = {rule.id: rule.controls for rule in policy.rules}
    query = select(findings.c.rule_id, findings.c.status, func.count()).group_by(findings.c.rule_id, findings.c.status)
    out: Dict[Tuple[str, str], int] = defaultdict(int)
    for rule_id, status, count in conn.execute(query):
        if rule_id not in controls:  # a rule no longer in the policy: its findings' own controls
            first = conn.execute(select(findings.c.controls).where(findings.c.rule_id == rule_id).limit(1)).scalar()
            controls[rule_id] = tuple(first or ())
        for control in controls[rule_id] or ("none",):
            out[(str(control), str(status))] += int(count)
    return dict(out)


def _versions(conn: Connection) -> Dict[str, int]:
    version = func.coalesce(agents.c.agent_version, "unknown")
    query = select(version, func.count()).where(agents.c.revoked_at.is_(None)).group_by(version)
    counts = sorted(((str(v), int(n)) for v, n in conn.execute(query)), key=lambda vn: (-vn[1], vn[0]))
    out = dict(counts[:MAX_VERSIONS])
    rest = sum(n for _v, n in counts[MAX_VERSIONS:])
    if rest:
        out["other"] = out.get("other", 0) + rest
    return out


def read_pipeline(
    conn: Connection, policy: Policy, channels: Iterable[str], now: Optional[datetime] = None
) -> Pipeline:
    now = now or utcnow()
    open_by_severity = select(incidents.c.severity, func.count()).where(incidents.c.status == "open")
    return Pipeline(
        channels=_channels(conn, channels, now),
        open_incidents={str(s): int(n) for s, n in conn.execute(open_by_severity.group_by(incidents.c.severity))},
        findings=_findings(conn, policy),
        agent_versions=_versions(conn),
    )


class PipelineReader:
    """:func:`read_pipeline` kept for ``max_age_s``; one reader at a time, the others wait for its answer."""

    def __init__(
        self,
        engine: Engine,
        policy: Callable[[], Policy],
        channels: Callable[[], Iterable[str]],
        max_age_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.channels = channels
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._read_at = -1e9
        self._last: Optional[Pipeline] = None

    def read(self) -> Pipeline:
        with self._lock:
            if self._last is None or time.monotonic() - self._read_at >= self.max_age_s:
                with read_tx(self.engine) as conn:
                    self._last = read_pipeline(conn, self.policy(), self.channels())
                self._read_at = time.monotonic()
            return self._last
