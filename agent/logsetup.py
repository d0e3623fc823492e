"""Logging to the journal with structured fields when python-systemd is there, else to stderr.

Structured fields ride on ``extra``: ``log.info("...", extra={"collector": "power",
"control": "M01"})`` becomes ``TILLSYN_COLLECTOR=power TILLSYN_CONTROL=M01`` in the
journal (``journalctl TILLSYN_COLLECTOR=power``), and ``[collector=power]`` on stderr.

The native journal protocol is used only when systemd connected our stderr to the
journal (``$JOURNAL_STREAM`` names fd 2, systemd.exec(5)): libsystemd drops messages
silently when journald is absent (sd_journal_sendv returns 0 on ENOENT), so in a
terminal, a container or under another supervisor the agent logs to stderr instead.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable, Dict, Mapping, Optional, TextIO

FIELDS = ("collector", "control", "agent_id")
IDENTIFIER = "tillsyn-agent"


def syslog_priority(levelno: int) -> int:
    """The syslog priority journald files a logging level under (sd-daemon(3))."""
    for limit, priority in ((logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3)):
        if levelno <= limit:
            return priority
    return 2 if levelno <= logging.CRITICAL else 1


def stderr_is_journal(env: Mapping[str, str], fd: int = 2) -> bool:
    """True when ``$JOURNAL_STREAM`` ("DEV:INODE") is the file open on ``fd``."""
    dev, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not (dev.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return st.st_dev == int(dev) and st.st_ino == int(inode)


class StderrFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: message [collector=... control=...]``.

    With ``journal_prefix`` (stderr is the journal, python-systemd missing) the line
    starts with the ``<N>`` priority prefix journald understands and carries no time
    of its own: the journal stamps each line.
    """

    def __init__(self, journal_prefix: bool = False) -> None:
        super().__init__("%(message)s" if journal_prefix else "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.journal_prefix = journal_prefix

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = [f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None)]
        if tags:
            text = f"{text} [{' '.join(tags)}]"
        if self.journal_prefix:
            # journald reads a stream line by line: every line needs its own prefix.
            prefix = f"<{syslog_priority(record.levelno)}>"
            text = "\n".join(prefix + line for line in text.split("\n"))
        return text


class JournalHandler(logging.Handler):
    """One journal entry per record, sent with ``send`` (python-systemd's ``journal.send``).

    A record that cannot be sent (journald gone, socket refused) is written to
    ``fallback`` instead of being lost.
    """

    def __init__(self, send: Callable[..., Any], agent_id: str, fallback: logging.Handler) -> None:
        super().__init__()
        self._send = send
        self.agent_id = agent_id
        self.fallback = fallback

    def fields(self, record: logging.LogRecord) -> Dict[str, Any]:
        fields: Dict[str, Any] = {
            "PRIORITY": str(syslog_priority(record.levelno)),
            "SYSLOG_IDENTIFIER": IDENTIFIER,
            "LOGGER": record.name,
            "THREAD_NAME": record.threadName or "",
            "CODE_FILE": record.pathname,
            "CODE_LINE": int(record.lineno),
            "CODE_FUNC": record.funcName or "",
        }
        for name in FIELDS:
            value = getattr(record, name, None) or (self.agent_id if name == "agent_id" else None)
            if value:
                fields[f"TILLSYN_{name.upper()}"] = str(value)
        return fields

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            fields = self.fields(record)
        except Exception:  # noqa: BLE001  logging must never raise into the daemon
            self.handleError(record)
            return
        try:
            self._send(message, **fields)
        except OSError:
            self.fallback.handle(record)


def setup(
    agent_id: str = "",
    *,
    journal: bool = True,
    level: int = logging.INFO,
    env: Optional[Mapping[str, str]] = None,
    stream: Optional[TextIO] = None,
) -> str:
    """Configure the root logger; returns what was chosen: "journal", "stderr+journal" or "stderr".

    "stderr+journal": stderr is the journal but python-systemd is missing, so lines
    carry ``<N>`` priority prefixes (priorities kept, structured fields only as text).
    """
    env = os.environ if env is None else env
    stream = sys.stderr if stream is None else stream
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    connected = stderr_is_journal(env)
    fallback = logging.StreamHandler(stream)
    fallback.setFormatter(StderrFormatter(journal_prefix=connected))
    handler: logging.Handler = fallback
    chosen = "stderr+journal" if connected else "stderr"
    if journal and connected:
        try:
            from systemd import journal as systemd_journal  # python-systemd, optional
        except ImportError:
            pass
        else:
            handler = JournalHandler(systemd_journal.send, agent_id, fallback)
            chosen = "journal"
    root.addHandler(handler)
    return chosen
