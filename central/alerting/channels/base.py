"""What every channel shares: the error, the sender protocol, secrets and time stamps."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Protocol, runtime_checkable

EVENTS = ("trigger", "repeat", "update", "resolve")
"""update: an open incident's finding is no longer failing but unknown (or failing again)."""


class ChannelError(Exception):
    """A notification could not be sent.  The message says why and never holds a secret.

    ``retry`` is true when the same notification may well go through later (the
    receiver is down, busy or rate-limiting) and false when a person must change
    something first (a refused password, an untrusted certificate, a rejected payload).
    """

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@runtime_checkable
class Sender(Protocol):
    name: str

    def send(self, event: str, incident: Mapping[str, Any]) -> None: ...


def check_event(name: str, event: str) -> None:
    if event not in EVENTS:
        raise ChannelError(
            f"channel {name!r}: unknown event {event!r} (expected one of {', '.join(EVENTS)})", retry=False
        )


def read_secret(name: str, key: str, path: Optional[Path]) -> str:
    """The secret in ``path`` (surrounding white space removed); a clear error names the file."""
    if path is None:
        raise ChannelError(f"channel {name!r}: {key} is required", retry=False)
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ChannelError(f"channel {name!r}: {key} {path}: no such file", retry=False) from None
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or type(err).__name__
        raise ChannelError(f"channel {name!r}: {key} {path}: cannot read: {why}", retry=False) from None
    if not value:
        raise ChannelError(f"channel {name!r}: {key} {path} is empty", retry=False)
    return value


def utc(value: datetime) -> datetime:
    """Aware UTC; a naive time (SQLite gives those back) is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def when(value: Any) -> Optional[str]:
    """``2024-05-01 12:00:05 UTC`` for a person (as the dashboard says it); strings pass through."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return f"{utc(value):%Y-%m-%d %H:%M:%S} UTC"
    raise TypeError(f"not a time: {value!r}")


def rfc3339(value: Any) -> Optional[str]:
    """``2024-05-01T12:00:00.123Z`` (RFC 3339, UTC); strings pass through; None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise TypeError(f"not a time: {value!r}")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_json(value: Any, *, indent: Optional[int] = None) -> str:
    """JSON of anything an incident holds (times as RFC 3339), never failing on an odd type."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, indent=indent, sort_keys=indent is not None)
