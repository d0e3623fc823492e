"""The daemon's side of the centre: deliveries (with backoff) and heartbeats, through the courier.

The main loop calls :meth:`Link.turn` on every turn; the network itself happens in the
courier's thread, so a hung centre never holds up the loop.  One job at a time,
heartbeats first when due, one batch of reports per job (a long backlog after an
outage must not keep heartbeats away).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Set

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import AgentConfig
from agent.errors import TransportError
from agent.identity import Enrolment, privacy_setting
from agent.recent_errors import Recent
from agent.spool import Spool
from agent.uplink import heartbeats
from agent.uplink.backoff import Backoff
from agent.uplink.deliver_reports import MAX_BATCH_REPORTS, Delivered, deliver
from agent.uplink.network_thread import Courier, Done
from agent.uplink.signed_http import Client

log = logging.getLogger("tillsyn.agent")
JOB_DEADLINE_S = 90.0
"""Longest a delivery or heartbeat may take (a batch is at most a few MB) before it is abandoned."""


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


class Link:
    def __init__(
        self,
        state: Path,
        enrolment: Enrolment,
        key: Ed25519PrivateKey,
        spool: Spool,
        wake: threading.Event,
        info: Dict[str, Any],
        recent: Recent,
    ) -> None:
        self.state = state
        self.enrolment = enrolment
        self.spool = spool
        self.key = key
        self.client = Client(enrolment.server, key, enrolment.agent_id, enrolment.ca_file)
        self.courier = Courier(wake)
        self.wake = wake
        self.info = info
        """The daemon's status (``status.json``): last delivery, its error, last heartbeat."""
        self.recent = recent
        """Errors for the heartbeats (read and added to only from the main loop)."""
        self.backoff = Backoff()
        self.heartbeat_every = 60
        self.next_delivery = 0.0
        self.next_heartbeat = 0.0
        self.batch_limit = MAX_BATCH_REPORTS
        self._counter_problems: Set[str] = set()
        self.beat_floor = 0
        """The highest heartbeat number this process used: the next is above it, whatever the clock."""

    def configure(self, config: AgentConfig) -> None:
        self.backoff = Backoff(config.backoff_min, config.backoff_max)
        asked = self.enrolment.heartbeat_interval
        # agent.yaml's interval, but never slower than the centre asked for at enrolment.
        self.heartbeat_every = min(config.heartbeat_interval, asked) if asked else config.heartbeat_interval
        self.privacy = privacy_setting(self.state, config.pseudonymise)

    def turn(self, now: float) -> None:
        """Take what the courier finished; give it the next job that is due."""
        done = self.courier.take()
        if done is not None:
            (self._delivered if done.name == "deliver" else self._heartbeat_sent)(done, time.monotonic())
        late = self.courier.overdue(now, JOB_DEADLINE_S)
        if late is not None:
            self._abandon(late, now)
        if self.courier.busy:
            return
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + self.heartbeat_every
            self.courier.start("heartbeat", self._heartbeat_job())
        elif now >= self.next_delivery and self.spool.depth():
            limit = self.batch_limit
            self.courier.start("deliver", lambda: deliver(self.spool, self.client, max_batches=1, batch_limit=limit))

    def _abandon(self, name: str, now: float) -> None:
        """Give up a job that has run past JOB_DEADLINE_S: a new connection and courier take over.

        Nothing is lost: only reports the centre acknowledged leave the spool, and the heartbeat's
        number was saved (and is the floor of the next) before it was sent."""
        text = f"centre: a {name} took over {JOB_DEADLINE_S:.0f} s and was abandoned; connecting again"
        log.error("%s (what it was sending stays spooled)", text)
        self.recent.note(text)
        stuck = self.client
        self.client = Client(self.enrolment.server, self.key, self.enrolment.agent_id, self.enrolment.ca_file)
        self.courier = Courier(self.wake)
        if name == "deliver":
            self.next_delivery = now + self.backoff.failed()
        try:
            stuck.close()
        except Exception:
            log.debug("closing the abandoned connection failed", exc_info=True)

    def wake_times(self) -> List[float]:
        """When the loop must turn for the centre (while a job runs: its end wakes the loop, and its
        deadline is kept)."""
        if self.courier.busy:
            return [self.courier_deadline()]
        return [self.next_heartbeat, self.next_delivery] if self.spool.depth() else [self.next_heartbeat]

    def _delivered(self, done: Done, now: float) -> None:
        if done.error is not None:
            delay = self.backoff.failed()
            self.next_delivery = now + delay
            self.info["last_delivery_error"] = str(done.error)
            if isinstance(done.error, TransportError):
                log.warning("delivery failed, retrying in %.0f s: %s", delay, done.error)
            else:
                log.error("delivery failed, retrying in %.0f s", delay, exc_info=done.error)
                self.recent.note(f"delivery: {type(done.error).__name__}: {done.error}")
            return
        result: Delivered = done.value
        self.backoff.succeeded()
        self.batch_limit = result.batch_limit
        if result.pending:
            self.next_delivery = 0.0
            self.wake.set()
        self.info["last_delivery_at"] = utc(time.time())
        self.info.pop("last_delivery_error", None)
        if result.rejected:
            self.recent.note(f"{result.rejected} report(s) refused by the centre, kept in spool/rejected")

    def _heartbeat_job(self) -> Callable[[], heartbeats.Sent]:
        dropped = self.spool.dropped()
        errors = self.recent.items()
        if dropped.get("count"):
            errors.append(f"{dropped['count']} report(s) dropped at the spool bound")
        if dropped.get("rejected"):
            errors.append(f"{dropped['rejected']} refused report(s) deleted from spool/rejected at the spool bound")
        depth = self.spool.depth()
        now = datetime.now(timezone.utc)
        floor, client = self.beat_floor, self.client

        def used(seq: int) -> None:
            self.beat_floor = max(self.beat_floor, seq)

        return lambda: heartbeats.send(
            client, self.state, self.enrolment.agent_id, now, depth, errors, floor, used, self.privacy
        )

    def _heartbeat_sent(self, done: Done, _now: float) -> None:
        if done.error is None:
            self.info["last_heartbeat_at"] = utc(time.time())
            problems = {f"heartbeat: {problem}" for problem in done.value.problems}
            for gone in self._counter_problems - problems:  # its number was saved again: that trouble is over
                self.recent.forget(gone)
            for problem in sorted(problems - self._counter_problems):
                log.error("%s", problem)
            for problem in sorted(problems):
                self.recent.note(problem)
            self._counter_problems = problems
        elif isinstance(done.error, TransportError):
            log.warning("heartbeat failed: %s", done.error)
        else:
            log.error("heartbeat failed", exc_info=done.error)
            self.recent.note(f"heartbeat: {type(done.error).__name__}: {done.error}")

    def courier_deadline(self) -> float:
        return self.courier.started + JOB_DEADLINE_S + 0.1

    def close(self) -> None:
        """Let go of the connection; a request still in the courier is abandoned (its reports stay spooled)."""
        self.client.close()
