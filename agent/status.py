"""What the daemon last did, kept in the state directory for ``tillsyn-agent status``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict

from agent.state import read_state, write_json

FILE = "status.json"
log = logging.getLogger("tillsyn.agent.status")


def load(state: Path) -> Dict[str, Any]:
    """The last saved status; empty when there is none or it cannot be read (the daemon rewrites it)."""
    data, problem = read_state(state / FILE)
    if problem:
        log.warning("%s; starting from an empty status", problem)
    return data or {}


def save(state: Path, status: Dict[str, Any]) -> None:
    write_json(state / FILE, status)
