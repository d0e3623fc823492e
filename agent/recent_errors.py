"""The agent's recent errors: sent in every heartbeat (``last_errors``) until they are over or pushed out."""

from __future__ import annotations

from typing import List, Optional

MAX_ERRORS = 10
"""Recent errors kept for heartbeats (the wire carries at most 20)."""


class Recent:
    """Used from the main loop only (the courier's results are handled there too)."""

    def __init__(self) -> None:
        self._errors: List[str] = []

    def note(self, error: str) -> None:
        """Remember an error for the next heartbeats: the latest few, each once."""
        kept = [e for e in self._errors if e != error]
        self._errors = [*kept[-(MAX_ERRORS - 1) :], error]

    def forget(self, error: Optional[str], prefix: bool = False) -> None:
        """An error that is over (a valid agent.yaml, room on disk again): heartbeats stop reporting it."""
        if error is not None:
            self._errors = [e for e in self._errors if not (e.startswith(error) if prefix else e == error)]

    def items(self) -> List[str]:
        return list(self._errors)
