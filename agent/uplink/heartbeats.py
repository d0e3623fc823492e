"""Heartbeats: small signed messages between reports saying the agent is alive and how it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from agent.sequence_numbers import advance_even_unsaved
from agent.uplink.signed_http import Client
from evidence.wire import Heartbeat, Privacy, canonical


def next_seq(state: Path, at_least: int = 0) -> Tuple[int, List[str]]:
    """The next heartbeat sequence (above ``at_least``) and what was repaired on the way.

    Persisted first so a restart never reuses one; on a full disk the heartbeat still goes
    (it is how the centre hears of the full disk), see :func:`advance_even_unsaved`.
    """
    return advance_even_unsaved(state / "heartbeat.json", "seq", at_least)


@dataclass(frozen=True)
class Sent:
    seq: int
    """The number this heartbeat used (the next must be above it)."""
    problems: List[str]
    """What had to be repaired for it (for the next heartbeats' errors)."""


def send(  # noqa: PLR0913  a heartbeat's fields, and how it is numbered
    client: Client,
    state: Path,
    agent_id: str,
    now: datetime,
    spool_depth: int,
    errors: Sequence[str],
    at_least: int = 0,
    numbered: Callable[[int], None] = lambda _seq: None,
    privacy: Optional[Privacy] = None,
) -> Sent:
    """Send one heartbeat numbered above ``at_least`` (the highest number this process used);
    ``numbered`` learns its number before it is sent (a send that fails has used it too)."""
    seq, problems = next_seq(state, at_least)
    numbered(seq)
    beat = Heartbeat(agent_id, seq, now, spool_depth, tuple(errors), privacy)
    client.post("/api/v1/heartbeat", canonical(beat.to_dict()))
    return Sent(seq, problems)
