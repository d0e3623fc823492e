"""Working the outbox: each notification sent once, a down channel delaying only its own.

Rows are leased (``claimed_until``) in a short transaction — on PostgreSQL picked
with ``FOR UPDATE SKIP LOCKED`` so several centre processes take disjoint rows —
then sent outside any transaction, then marked sent (or rescheduled with backoff)
in another short one.  A process that dies mid-send leaves a lease that expires,
and the row is sent again: delivery is at least once, and every channel carries a
stable dedup key (PagerDuty, Alertmanager) or a thread id (email) for receivers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from sqlalchemy import Engine, and_, exists, or_, select, update

from central.alerting.channels import ChannelError, Sender
from central.alerting.incidents import event, view
from central.alerting.settings import Alerting
from central.clock import utcnow
from central.db.engine import write_tx
from central.db.schema import agents, incidents, outbox
from central.runtime.background import Background

log = logging.getLogger("tillsyn.central.alerting")
LEASE_S = 120
_INCIDENT_FIELDS = (
    "id",
    "dedup_key",
    "agent_id",
    "rule_id",
    "kind",
    "status",
    "severity",
    "title",
    "message",
    "controls",
    "observed",
    "opened_at",
    "resolved_at",
    "acknowledged_at",
    "acknowledged_by",
)
BATCH = 50


@dataclass
class Sent:
    sent: int = 0
    failed: int = 0
    """Notifications rescheduled (the one that failed and those behind it on its channel)."""
    attempts: Dict[Tuple[str, str, bool], int] = field(default_factory=dict)
    """Delivery attempts by (channel, kind, succeeded), for the metrics."""

    def attempted(self, channel: str, kind: str, ok: bool) -> None:
        key = (channel, kind, ok)
        self.attempts[key] = self.attempts.get(key, 0) + 1

    def add(self, other: Sent) -> None:
        self.sent += other.sent
        self.failed += other.failed
        for (channel, kind, ok), count in other.attempts.items():
            key = (channel, kind, ok)
            self.attempts[key] = self.attempts.get(key, 0) + count


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:64]


def _claim(engine: Engine, owner: str, now: datetime) -> List[Mapping[Any, Any]]:
    earlier = outbox.alias("earlier")
    due = and_(
        outbox.c.sent_at.is_(None),
        outbox.c.next_attempt_at <= now,
        or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
        # In order per incident and channel: a resolve never overtakes its trigger after an outage.
        ~exists().where(
            earlier.c.incident_id == outbox.c.incident_id,
            earlier.c.channel == outbox.c.channel,
            earlier.c.sent_at.is_(None),
            earlier.c.id < outbox.c.id,
        ),
    )
    with write_tx(engine) as conn:
        query = select(outbox.c.id).where(due).order_by(outbox.c.id).limit(BATCH)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = [r.id for r in conn.execute(query)]
        if not ids:
            return []
        conn.execute(
            update(outbox)
            .where(and_(outbox.c.id.in_(ids), due))
            .values(claimed_until=now + timedelta(seconds=LEASE_S), claimed_by=owner)
        )
        rows = (
            conn.execute(
                select(
                    outbox.c.id,
                    outbox.c.channel,
                    outbox.c.event,
                    outbox.c.message.label("notice"),
                    outbox.c.attempts,
                    outbox.c.incident_id,
                    *[incidents.c[name] for name in _INCIDENT_FIELDS if name != "id"],
                    agents.c.hostname,
                    agents.c.tenant,
                    agents.c.group_name,
                    agents.c.labels,
                )
                .join(incidents, incidents.c.id == outbox.c.incident_id)
                .join(agents, agents.c.id == incidents.c.agent_id)
                .where(outbox.c.claimed_by == owner, outbox.c.id.in_(ids))
                .order_by(outbox.c.id)
            )
            .mappings()
            .all()
        )
    return list(rows)


def _incident(row: Mapping[Any, Any], public_url: Optional[str]) -> Dict[str, Any]:
    incident = {k: row[k] for k in _INCIDENT_FIELDS if k != "id"}
    incident["id"] = row["incident_id"]
    agent = {
        "hostname": row["hostname"],
        "tenant": row["tenant"],
        "group_name": row["group_name"],
        "labels": row["labels"],
    }
    out = view(incident, agent)
    # the sentence this notification carries; rows queued before migration 0009 have none
    out["message"] = row["notice"] or row["message"] or row["title"]
    out["url"] = f"{public_url.rstrip('/')}/nodes/{row['agent_id']}" if public_url else None
    return out


def _backoff(attempts: int, retry_max_s: int) -> float:
    return float(min(retry_max_s, 5 * 2 ** min(attempts, 16)))


def _still_mine(engine: Engine, row_id: int, owner: str) -> bool:
    """Renew this row's lease just before sending it; False when it is no longer this owner's.

    A batch is sent one row after another, and a slow channel can take longer than one lease
    for all of them: each row gets a full lease when its turn comes, and a row whose lease ran
    out and that another process has taken is left to that process."""
    now = utcnow()
    with write_tx(engine) as conn:
        done = conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id, outbox.c.claimed_by == owner, outbox.c.sent_at.is_(None))
            .values(claimed_until=now + timedelta(seconds=LEASE_S))
        )
        return bool(done.rowcount)


def _send_channel(
    engine: Engine,
    sender: Optional[Sender],
    rows: List[Mapping[Any, Any]],
    settings: Alerting,
    public_url: Optional[str],
    owner: str,
) -> Sent:
    """Send one channel's rows in order; at the first failure the rest wait for the next round."""
    result = Sent()
    failure: Optional[str] = None
    for row in rows:
        if failure is None and not _still_mine(engine, row["id"], owner):
            break  # taken over (and the rows after it, in order, with it)
        now = utcnow()
        if failure is None:
            try:
                if sender is None:
                    raise ChannelError(f"channel {row['channel']!r} is not configured", retry=True)
                sender.send(row["event"], _incident(row, public_url))
            except ChannelError as err:
                failure = str(err)
            except Exception as err:  # noqa: BLE001  a channel bug must not stop the dispatcher
                failure = f"{type(err).__name__}: {err}"
            result.attempted(row["channel"], row["event"], failure is None)
        with write_tx(engine) as conn:
            if failure is None:
                marked = conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row["id"], outbox.c.sent_at.is_(None))
                    .values(sent_at=now, claimed_until=None, last_error=None, attempts=row["attempts"] + 1)
                )
                if marked.rowcount:  # once on the timeline, however many processes sent it
                    detail = f"{row['event']} sent"
                    event(conn, row["incident_id"], "notified", now, channel=row["channel"], detail=detail)
                result.sent += 1
            else:
                delay = _backoff(row["attempts"], settings.retry_max_s)
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row["id"], outbox.c.claimed_by == owner, outbox.c.sent_at.is_(None))
                    .values(
                        attempts=row["attempts"] + 1,
                        last_error=failure[:1000],
                        claimed_until=None,
                        next_attempt_at=now + timedelta(seconds=delay),
                    )
                )
                if row["attempts"] == 0:  # the first failure goes on the timeline, not every retry
                    event(
                        conn,
                        row["incident_id"],
                        "notify_failed",
                        now,
                        channel=row["channel"],
                        detail=f"{row['event']}: {failure[:500]}; retrying",
                    )
                result.failed += 1
    if failure is not None:
        log.warning("channel %s failed, %d notification(s) wait: %s", rows[0]["channel"], result.failed, failure)
    return result


def dispatch_once(
    engine: Engine,
    settings: Alerting,
    senders: Mapping[str, Sender],
    public_url: Optional[str] = None,
    owner: Optional[str] = None,
    pool: Optional[ThreadPoolExecutor] = None,
) -> Sent:
    """Claim due notifications and send them, each channel in its own thread."""
    owner = owner or owner_id()
    rows = _claim(engine, owner, utcnow())
    by_channel: Dict[str, List[Mapping[Any, Any]]] = {}
    for row in rows:
        by_channel.setdefault(row["channel"], []).append(row)
    total = Sent()
    if not by_channel:
        return total
    own_pool = pool is None
    executor = pool or ThreadPoolExecutor(max_workers=max(1, len(by_channel)), thread_name_prefix="notify")
    try:
        futures = [
            executor.submit(_send_channel, engine, senders.get(name), channel_rows, settings, public_url, owner)
            for name, channel_rows in by_channel.items()
        ]
        for future in futures:
            total.add(future.result())
    finally:
        if own_pool:
            executor.shutdown(wait=True)
    return total


class Dispatcher(Background):
    """Works the outbox every ``interval`` seconds, or when woken, until stopped."""

    def __init__(self, interval: float, job: Callable[[], Sent]) -> None:
        super().__init__("tillsyn-dispatch", interval)
        self.job = job

    def run(self) -> None:
        while not self.stopping.is_set():
            self.woken.wait(self.interval)
            self.woken.clear()
            if self.stopping.is_set():
                break
            try:
                self.job()
            except Exception:
                log.exception("outbox dispatch failed; retrying next round")
