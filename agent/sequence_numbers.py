"""Sequence numbers that never go backwards, even when their file is damaged or cannot be written.

The centre refuses a report or heartbeat whose number is not above the last one it
stored (``409 replay``), so a counter that went back would silence the node.  Each
counter is one small JSON file, written before its number is handed out.  When the
file cannot be read (cut short, garbage), counting goes on from the clock: the
milliseconds since the epoch are above any number reached by counting (that would
take a thousand numbers a second since 1970), and above any earlier clock floor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Tuple

from agent.state import os_reason, read_state, write_json


def clock_floor() -> int:
    """Milliseconds since the epoch: the number to go on from when a counter's file is lost."""
    return int(time.time() * 1000)


def _current(path: Path, key: str) -> Tuple[int, List[str]]:
    data, problem = read_state(path)
    if problem is not None and path.is_file() and path.stat().st_size == 0:
        problem = f"{path}: empty (its last save could not be completed)"
    if data is not None:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value, []
        problem = f"{path}: {key!r} is not a number"
    if problem is None:
        return 0, []  # no file yet: a new node counts from 1
    return clock_floor(), [f"{problem}; numbering goes on from the clock"]


def advance(path: Path, key: str, at_least: int = 0) -> Tuple[int, List[str]]:
    """The next number (above ``at_least`` too), saved before it is returned; and what was repaired.

    OSError when it cannot be saved: the number is then not to be used.
    """
    current, problems = _current(path, key)
    value = max(current, at_least) + 1
    write_json(path, {key: value})
    return value, problems


def advance_even_unsaved(path: Path, key: str, at_least: int = 0) -> Tuple[int, List[str]]:
    """Like :func:`advance`, but when the number cannot be saved (a full disk) it is still handed out.

    The file is then emptied instead, which needs no free space: the next reading (in this
    process or after a restart) finds it unreadable and goes on from the clock, above the
    number used now.  ``at_least`` is the highest number this process handed out: a clock
    stepped back while the disk is full must not take the numbering below it.  OSError only
    when even emptying the file fails.
    """
    current, problems = _current(path, key)
    value = max(current, at_least) + 1
    try:
        write_json(path, {key: value})
    except OSError as err:
        with open(path, "wb"):
            pass
        problems.append(f"{path}: not saved ({os_reason(err)}); numbering goes on from the clock")
    return value, problems
