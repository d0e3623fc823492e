"""Parse the kernel audit log (auditd's raw format) for who last touched a path.

Pure.  Each line is ``type=T msg=audit(SECONDS.MILLIS:SERIAL): key=value …``; the lines of one
event share the serial.  A ``PATH`` record names the file (absolute, or relative to the event's
``CWD``); the event's ``SYSCALL`` record says which process (``comm``, ``exe``, ``pid``), as
which user (``uid``) and for which login (``auid``, kept through sudo and su; 4294967295 when
the process has no login session, e.g. a service).  An event whose SYSCALL line is missing
(the log was cut) gives no actor.  Lines that cannot be read are counted.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional, Tuple

_LINE = re.compile(r"^type=(\S+) msg=audit\((\d+)\.(\d+):(\d+)\):\s?(.*)$")
NO_LOGIN = "4294967295"


@dataclass
class Event:
    time: datetime
    records: List[Tuple[str, Dict[str, str]]] = field(default_factory=list)


def _fields(text: str) -> Dict[str, str]:
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    out: Dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if sep and key not in out:
            out[key] = value
    return out


def parse_events(text: str) -> Tuple[Dict[str, Event], int]:
    events: Dict[str, Event] = {}
    bad = 0
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            if line.strip():
                bad += 1
            continue
        kind, seconds, _millis, serial, rest = match.groups()
        try:
            moment = datetime.fromtimestamp(int(seconds), timezone.utc)
        except (OverflowError, OSError, ValueError):
            bad += 1
            continue
        key = f"{seconds}:{serial}"
        events.setdefault(key, Event(moment)).records.append((kind, _fields(rest)))
    return events, bad


def _paths(event: Event) -> Iterable[str]:
    cwd = next((f.get("cwd", "") for k, f in event.records if k == "CWD"), "")
    for kind, found in event.records:
        name = found.get("name")
        if kind != "PATH" or not name or name == "(null)":
            continue
        yield name if name.startswith("/") else f"{cwd.rstrip('/')}/{name}"


def last_actors(text: str, wanted: Iterable[str]) -> Tuple[Dict[str, Dict[str, Any]], int]:
    """Per wanted path, its latest event: ``{at, process, exe, pid, uid, auid, syscall, success, key}``
    (process facts None when the event has no SYSCALL line); and the count of unreadable lines."""
    targets = set(wanted)
    events, bad = parse_events(text)
    latest: Dict[str, Dict[str, Any]] = {}
    for event in sorted(events.values(), key=lambda e: e.time):
        touched = [p for p in _paths(event) if p in targets]
        if not touched:
            continue
        syscall = next((f for k, f in event.records if k == "SYSCALL"), None)
        actor: Dict[str, Any] = {"at": event.time.isoformat().replace("+00:00", "Z")}
        if syscall is None:
            actor.update(process=None, exe=None, pid=None, uid=None, auid=None, syscall=None, success=None, key=None)
        else:
            auid = syscall.get("auid")
            actor.update(
                process=syscall.get("comm"),
                exe=syscall.get("exe"),
                pid=_int(syscall.get("pid")),
                uid=_int(syscall.get("uid")),
                auid=None if auid in (None, NO_LOGIN) else _int(auid),
                no_login_session=auid == NO_LOGIN,
                syscall=syscall.get("syscall"),
                success=syscall.get("success"),
                key=None if syscall.get("key") in (None, "(null)") else syscall.get("key"),
            )
        for path in touched:
            latest[path] = actor
    return latest, bad


def _int(text: Optional[str]) -> Optional[int]:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None
