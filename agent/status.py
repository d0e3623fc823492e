"""What the daemon last did, kept in the state directory for ``tillsyn-agent status``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from agent.state import read_json, write_json

FILE = "status.json"


def load(state: Path) -> Dict[str, Any]:
    return read_json(state / FILE) or {}


def save(state: Path, status: Dict[str, Any]) -> None:
    write_json(state / FILE, status)
