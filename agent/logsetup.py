"""Logging to the journal with structured fields when python-systemd is there, else to stderr.

Structured fields ride on ``extra``: ``log.info("...", extra={"collector": "power",
"control": "M01"})`` becomes ``TILLSYN_COLLECTOR=power TILLSYN_CONTROL=M01`` in the
journal (``journalctl TILLSYN_COLLECTOR=power``), and ``[collector=power]`` on stderr.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Dict

FIELDS = ("collector", "control", "agent_id")


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = [f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None)]
        return f"{text} [{' '.join(tags)}]" if tags else text


def _journal_handler(agent_id: str) -> logging.Handler:
    from systemd import journal  # python-systemd, optional

    class Handler(journal.JournalHandler):  # type: ignore[misc]
        def emit(self, record: logging.LogRecord) -> None:
            extra: Dict[str, Any] = {}
            for name in FIELDS:
                value = getattr(record, name, None) or (agent_id if name == "agent_id" else None)
                if value:
                    extra[f"TILLSYN_{name.upper()}"] = str(value)
            record.__dict__.update(extra)
            super().emit(record)

    handler: logging.Handler = Handler(SYSLOG_IDENTIFIER="tillsyn-agent")
    return handler


def setup(agent_id: str = "", *, journal: bool = True, level: int = logging.INFO) -> str:
    """Configure the root logger; returns "journal" or "stderr" (what was chosen)."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    handler: logging.Handler
    chosen = "stderr"
    if journal:
        try:
            handler = _journal_handler(agent_id)
            chosen = "journal"
        except ImportError:
            handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if chosen == "stderr":
        handler.setFormatter(_StderrFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return chosen
