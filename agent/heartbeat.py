"""Heartbeats: small signed messages between reports saying the agent is alive and how it is."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Sequence

from agent.state import read_json, write_json
from agent.transport import Client
from evidence.wire import Heartbeat, canonical


def next_seq(state: Path) -> int:
    """The next heartbeat sequence, persisted first so a restart never reuses one."""
    path = state / "heartbeat.json"
    seq = int((read_json(path) or {}).get("seq", 0)) + 1
    write_json(path, {"seq": seq})
    return seq


def send(client: Client, state: Path, agent_id: str, now: datetime, spool_depth: int, errors: Sequence[str]) -> None:
    beat = Heartbeat(agent_id, next_seq(state), now, spool_depth, tuple(errors))
    client.post("/api/v1/heartbeat", canonical(beat.to_dict()))
