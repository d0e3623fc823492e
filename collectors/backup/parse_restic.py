"""Pure parsing of ``restic snapshots --json`` and of restic's error messages.

The JSON is a list of snapshot objects (restic ``cmd_snapshots.go``): ``time`` (RFC 3339,
nanoseconds), ``hostname``, ``paths``, ``id``, ``short_id``.  restic repositories are always
encrypted (AES-256-CTR + Poly1305, restic design document), so there is no field to read for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional

from collectors.backup.parse_times import parse_rfc3339


@dataclass(frozen=True)
class ResticSnapshot:
    """One snapshot as listed by restic."""

    time: datetime
    id: str
    short_id: str
    hostname: str
    paths: List[str]


@dataclass(frozen=True)
class ResticSnapshots:
    """The snapshots restic listed (with ``--latest 1``: the newest per host and path set; with
    ``--host``, one host's path sets, of which the newest counts: a node may change what it backs up)."""

    snapshots: List[ResticSnapshot]

    @property
    def latest(self) -> Optional[ResticSnapshot]:
        return max(self.snapshots, key=lambda s: s.time) if self.snapshots else None


def parse_snapshots(text: str) -> ResticSnapshots:
    """Parse ``restic snapshots --json``; raises ``ValueError`` saying what is malformed."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"restic snapshots output is not JSON: {err.msg} at char {err.pos}") from err
    if data is None:  # restic 0.9 printed "null" for an empty repository
        data = []
    if not isinstance(data, list):
        raise ValueError(f"restic snapshots output is a {type(data).__name__}, not a list")
    snapshots = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("time"), str) or not isinstance(item.get("id"), str):
            raise ValueError(f"restic snapshot #{index} lacks a time or an id")
        paths = item.get("paths") or []
        snapshots.append(
            ResticSnapshot(
                time=parse_rfc3339(item["time"]),
                id=item["id"],
                short_id=str(item.get("short_id") or item["id"][:8]),
                hostname=str(item.get("hostname") or ""),
                paths=[str(p) for p in paths] if isinstance(paths, list) else [],
            )
        )
    return ResticSnapshots(snapshots)


def explain_failure(stderr: str, returncode: Optional[int], repository: str, password_file: str) -> str:
    """A reason a person can act on, from restic's stderr and exit code.

    Exit codes 10 (no repository) and 12 (wrong password) exist from restic 0.17 on; older
    versions exit 1, so the messages are matched too (restic ``internal/repository``).
    """
    lowered = stderr.lower()
    if "resolving password failed" in lowered or "reading password from file" in lowered:
        return f"password file {password_file} could not be read: {_last_line(stderr)}"
    if returncode == 12 or "wrong password" in lowered:
        return f"wrong password: restic could not open {repository} with the password in {password_file}"
    if returncode == 10 or ("is there a repository" in lowered and "no such file or directory" in lowered):
        return f"repository does not exist: no restic repository at {repository}"
    if "is there a repository at the following location" in lowered or "unable to open repository" in lowered:
        return f"cannot open repository {repository}: {_last_line(stderr)}"
    if "unable to create lock" in lowered or "repository is already locked" in lowered:
        return f"repository {repository} is locked: {_last_line(stderr)}"
    return f"restic exited with status {returncode}: {_last_line(stderr)}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "no message"
    # restic's last line after "Fatal:" is often the repository echo; prefer the Fatal line.
    fatal = [line for line in lines if line.startswith("Fatal:")]
    return (fatal[-1] if fatal else lines[-1])[:300]
