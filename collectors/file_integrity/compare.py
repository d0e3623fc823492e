"""What changed between the baseline and now.  Pure.

A file is ``created``, ``deleted``, ``modified`` (its content: the SHA-256, or for a file too
large or unreadable to hash its size and time; a link's target; its type) or has changed
``attributes`` only (owner, group, mode).  A file replaced by an identical copy (a new inode, the
same content and attributes, as editors and package tools do) has not changed.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

ATTRIBUTES = ("uid", "gid", "mode")


def _content_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    if old.get("type") != new.get("type") or old.get("target") != new.get("target"):
        return True
    if old.get("sha256") and new.get("sha256"):
        return bool(old["sha256"] != new["sha256"])
    return bool(old.get("size") != new.get("size") or old.get("mtime") != new.get("mtime"))


def _under(path: str, roots: List[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def compare(
    old: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    roots: List[str],
) -> List[Dict[str, Any]]:
    """Changes below ``roots`` (the paths watched both then and now), sorted by path."""
    changes: List[Dict[str, Any]] = []
    for path in sorted(set(old) | set(new)):
        if not _under(path, roots):
            continue
        before, after = old.get(path), new.get(path)
        if before is None and after is not None:
            kind = "created"
        elif after is None and before is not None:
            kind = "deleted"
        elif before is not None and after is not None and _content_changed(before, after):
            kind = "modified"
        elif before is not None and after is not None and any(before.get(a) != after.get(a) for a in ATTRIBUTES):
            kind = "attributes"
        else:
            continue
        now = after or {}
        changes.append(
            {
                "path": path,
                "change": kind,
                "sha256": now.get("sha256"),
                "previous_sha256": (before or {}).get("sha256"),
                "uid": now.get("uid"),
                "gid": now.get("gid"),
                "mode": now.get("mode"),
                "previous_mode": (before or {}).get("mode"),
                "size": now.get("size"),
                "mtime": now.get("mtime"),
                "unhashed": now.get("unhashed"),
            }
        )
    return changes
