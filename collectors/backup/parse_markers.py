"""Pure parsing of the two small JSON files Tillsyn defines for backup jobs to leave evidence.

* A **marker** written by any backup job when it ends: ``{"finished_at": RFC 3339, "result":
  "success"|"failed", "repository": str?, "encrypted": bool?, "last_success_at": RFC 3339?}``.
  An empty file is the minimal form: the job ``touch``-es it after a success, so its mtime is
  the time of the last successful backup.
* A **restore-test record** written by a restore-test job: ``{"tested_at": RFC 3339, "result":
  "passed"|"failed", "snapshot": str?, "files_checked": int?, "detail": str?}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Optional

from collectors.backup.parse_times import parse_rfc3339

MARKER_RESULTS = ("success", "failed")
RESTORE_RESULTS = ("passed", "failed")
_DETAIL_LIMIT = 300


@dataclass(frozen=True)
class Marker:
    """What a marker file says about the job's last run."""

    finished_at: datetime
    result: str
    last_success_at: Optional[datetime]
    repository: Optional[str]
    encrypted: Optional[bool]
    source: str
    """"json" when the file had content, "mtime" for an empty file taken by its modification time."""


@dataclass(frozen=True)
class RestoreTest:
    """The last restore test recorded for one backup."""

    tested_at: datetime
    result: str
    snapshot: Optional[str]
    files_checked: Optional[int]
    detail: Optional[str]


def _object(data: bytes, what: str) -> Dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} is not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} is not JSON: {err.msg} at char {err.pos}") from err
    if not isinstance(value, dict):
        raise ValueError(f"{what} is a JSON {type(value).__name__}, not an object")
    return value


def _time(obj: Dict[str, Any], key: str, what: str, required: bool) -> Optional[datetime]:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what}: {key} is missing or not a string")
    try:
        return parse_rfc3339(value)
    except ValueError as err:
        raise ValueError(f"{what}: {key}: {err}") from err


def _choice(obj: Dict[str, Any], key: str, allowed: tuple, what: str) -> str:  # type: ignore[type-arg]
    value = obj.get(key)
    if value not in allowed:
        raise ValueError(f"{what}: {key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _optional(obj: Dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{what}: {key} must be {kind.__name__}, got {value!r}")
    return value


def parse_marker(data: bytes, mtime: datetime) -> Marker:
    """Parse a marker file's bytes; ``mtime`` (aware) is used for the empty form."""
    if not data.strip():
        return Marker(mtime, "success", mtime, None, None, "mtime")
    what = "marker"
    obj = _object(data, what)
    finished = _time(obj, "finished_at", what, required=True)
    assert finished is not None
    result = _choice(obj, "result", MARKER_RESULTS, what)
    last_success = _time(obj, "last_success_at", what, required=False)
    if result == "success":
        last_success = finished
    return Marker(
        finished_at=finished,
        result=result,
        last_success_at=last_success,
        repository=_optional(obj, "repository", str, what),
        encrypted=_optional(obj, "encrypted", bool, what),
        source="json",
    )


def parse_restore_test(data: bytes) -> RestoreTest:
    """Parse a restore-test record; raises ``ValueError`` saying what is malformed."""
    what = "restore-test record"
    obj = _object(data, what)
    tested = _time(obj, "tested_at", what, required=True)
    assert tested is not None
    files = _optional(obj, "files_checked", int, what)
    if files is not None and files < 0:
        raise ValueError(f"{what}: files_checked must not be negative, got {files}")
    detail = _optional(obj, "detail", str, what)
    return RestoreTest(
        tested_at=tested,
        result=_choice(obj, "result", RESTORE_RESULTS, what),
        snapshot=_optional(obj, "snapshot", str, what),
        files_checked=files,
        detail=detail[:_DETAIL_LIMIT] if detail is not None else None,
    )
