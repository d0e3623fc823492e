"""How many wrong logins an address may make: per address and name typed, and per address alone.

Counting per account alone told which accounts exist (an unknown name was never locked) and let
anyone lock a person out by guessing at their name.  Here the same counts hold for any name,
known or not, and only for the address that guessed: ``max_failed_logins`` wrong passwords for
one name from one address within ``lockout_minutes`` hold that name *from that address* for
``lockout_minutes``; ``max_failed_logins_per_address`` wrong logins from one address, whatever
the names, hold that address.  The person logging in from elsewhere is not held.

Counts live in this process's memory (a restarted centre starts afresh; several replicas each
count their own), bounded to :data:`MAX_KEYS` entries, so a flood of addresses cannot exhaust it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Dict, Optional, Tuple

from central.config import Sessions

MAX_KEYS = 100_000
Key = Tuple[str, str]
_ANY_NAME = "\0any"  # not a username anyone can type (a NUL in a body is refused, central/api/edge.py)


@dataclass
class _Count:
    failures: int
    since: datetime
    held_until: Optional[datetime] = None


@dataclass(frozen=True)
class Held:
    """A login refused before its password was looked at, for ``retry_after_s``."""

    retry_after_s: int
    message: str


class LoginThrottle:
    def __init__(self, settings: Sessions) -> None:
        self.per_name = settings.max_failed_logins
        self.per_address = settings.max_failed_logins_per_address
        self.window = timedelta(minutes=settings.lockout_minutes)
        self.counts: Dict[Key, _Count] = {}
        self.lock = threading.Lock()

    def held(self, address: Optional[str], username: str, now: datetime) -> Optional[Held]:
        """Whether this address may not try ``username`` (or any name) now; the message is the same
        whether the account exists or not."""
        with self.lock:
            for key, what in (((address or "", _ANY_NAME), "from your address"), ((address or "", username), "")):
                count = self.counts.get(key)
                if count is not None and count.held_until is not None and count.held_until > now:
                    wait = int((count.held_until - now).total_seconds()) + 1
                    detail = f" {what}" if what else ""
                    return Held(wait, f"too many failed logins{detail}; try again in {wait // 60 + 1} minutes")
        return None

    def failed(self, address: Optional[str], username: str, now: datetime) -> bool:
        """Count a wrong login; True when this one started a hold (for the audit trail)."""
        with self.lock:
            self._make_room(now)
            by_name = self._add((address or "", username), self.per_name, now)
            by_address = self._add((address or "", _ANY_NAME), self.per_address, now)
            return by_name or by_address

    def succeeded(self, address: Optional[str], username: str) -> None:
        with self.lock:
            self.counts.pop((address or "", username), None)

    def _add(self, key: Key, limit: int, now: datetime) -> bool:
        count = self.counts.get(key)
        if count is None or now - count.since > self.window or (count.held_until and count.held_until <= now):
            count = self.counts[key] = _Count(0, now)
        count.failures += 1
        if count.failures >= limit and count.held_until is None:
            count.held_until = now + self.window
            return True
        return False

    def _make_room(self, now: datetime) -> None:
        if len(self.counts) < MAX_KEYS:
            return
        for key in [k for k, c in self.counts.items() if now - c.since > self.window and not _holding(c, now)]:
            del self.counts[key]
        while len(self.counts) >= MAX_KEYS:  # still full: the oldest entries go first
            del self.counts[next(iter(self.counts))]


def _holding(count: _Count, now: datetime) -> bool:
    return count.held_until is not None and count.held_until > now
