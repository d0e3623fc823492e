"""Heartbeats: small signed messages between reports saying the agent is alive and how it is."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import List, Sequence, Tuple

from agent.counter import advance_even_unsaved
from agent.transport import Client
from evidence.wire import Heartbeat, canonical


def next_seq(state: Path) -> Tuple[int, List[str]]:
    """The next heartbeat sequence and what was repaired on the way.

    Persisted first so a restart never reuses one; on a full disk the heartbeat still goes
    (it is how the centre hears of the full disk), see :func:`advance_even_unsaved`.
    """
    return advance_even_unsaved(state / "heartbeat.json", "seq")


def send(
    client: Client, state: Path, agent_id: str, now: datetime, spool_depth: int, errors: Sequence[str]
) -> List[str]:
    """Send one heartbeat; what had to be repaired for it (for the next heartbeats' errors)."""
    seq, problems = next_seq(state)
    beat = Heartbeat(agent_id, seq, now, spool_depth, tuple(errors))
    client.post("/api/v1/heartbeat", canonical(beat.to_dict()))
    return problems
