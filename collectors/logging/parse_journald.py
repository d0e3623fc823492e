"""systemd's INI-style configuration files: journald.conf and journal-upload.conf (pure).

systemd.syntax(7): ``[Section]`` headers, ``Key=value`` lines, ``#`` and ``;`` comments; a later
assignment overrides an earlier one.  journald.conf(5): ``Storage=`` is ``volatile``,
``persistent``, ``auto`` (persistent when ``/var/log/journal`` exists) or ``none``; the default is
``auto`` (``persistent`` since systemd 258 for the default namespace is not assumed here).
"""

from __future__ import annotations

from typing import Dict, Optional

STORAGE_VALUES = ("volatile", "persistent", "auto", "none")


class IniFormatError(ValueError):
    """A line is neither a section header, an assignment, a comment nor blank."""


def parse_section(text: str, section: str) -> Dict[str, str]:
    """The assignments of ``[section]`` (later ones win)."""
    values: Dict[str, str] = {}
    current: Optional[str] = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise IniFormatError(f"line {number} is not Key=value: {raw[:60]!r}")
        if current == section:
            values[key.strip()] = value.strip()
    return values


def persistent(storage: str, journal_dir_exists: bool) -> Optional[bool]:
    """Whether the journal is kept on disk across reboots; None for a value journald rejects."""
    if storage == "persistent":
        return True
    if storage == "auto":
        return journal_dir_exists
    if storage in ("volatile", "none"):
        return False
    return None
