"""Turn changes into the observed facts: names for uids, the actor from the audit log, and a
summary when there are more changes than ``max_listed`` (a storm).  Pure."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional

AUDIT_UNKNOWN = "no audit record of it"


def names(text: Optional[str]) -> Dict[int, str]:
    """uid (or gid) -> name from passwd/group text; damaged lines are skipped."""
    found: Dict[int, str] = {}
    for line in (text or "").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isascii() and parts[2].isdigit():
            found.setdefault(int(parts[2]), parts[0])
    return found


def _time(value: Any) -> Optional[str]:
    if not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value, timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def describe(
    change: Dict[str, Any],
    users: Mapping[int, str],
    groups: Mapping[int, str],
    actor: Optional[Mapping[str, Any]],
    audit_note: Optional[str],
) -> Dict[str, Any]:
    """One listed change with owner and group names, its time and, when known, who made it."""
    uid, gid = change.get("uid"), change.get("gid")
    record = {
        "path": change["path"],
        "change": change["change"],
        "sha256": change.get("sha256"),
        "previous_sha256": change.get("previous_sha256"),
        "owner": users.get(uid, str(uid)) if uid is not None else None,
        "group": groups.get(gid, str(gid)) if gid is not None else None,
        "mode": change.get("mode"),
        "previous_mode": change.get("previous_mode"),
        "size": change.get("size"),
        "changed_at": _time(change.get("mtime")),
    }
    if change.get("unhashed"):
        record["unhashed"] = change["unhashed"]
    if actor is not None and actor.get("process") is not None:
        auid = actor.get("auid")
        record.update(
            process={"name": actor.get("process"), "exe": actor.get("exe"), "pid": actor.get("pid")},
            user=users.get(actor["uid"], str(actor["uid"])) if actor.get("uid") is not None else None,
            login=users.get(auid, str(auid)) if auid is not None else None,
            actor_note="no login session (a service or timer)" if actor.get("no_login_session") else None,
            audit_at=actor.get("at"),
        )
    else:
        record.update(
            process=None,
            user=None,
            login=None,
            actor_note=audit_note or (f"{AUDIT_UNKNOWN} (its SYSCALL line is missing)" if actor else AUDIT_UNKNOWN),
        )
    return record


def summarise(changes: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Counts by kind and by directory, for a storm of changes."""
    by_kind: Dict[str, int] = {}
    by_directory: Dict[str, int] = {}
    for change in changes:
        by_kind[change["change"]] = by_kind.get(change["change"], 0) + 1
        directory = os.path.dirname(change["path"])
        by_directory[directory] = by_directory.get(directory, 0) + 1
    return {"by_change": by_kind, "by_directory": by_directory}
