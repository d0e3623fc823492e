"""Pure parsing of ``borg list --json --last 1`` (Borg 1.1/1.2) and of borg's error messages.

One call gives both the newest archive and the repository's encryption mode: the JSON has
``archives[]`` (``name``, ``id``, ``start``/``time``), ``encryption.mode`` and ``repository.location``
(borg docs, "All about JSON").  Times carry no zone: they are in the local zone of the borg process,
which the collector pins to UTC with ``TZ=UTC``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from collectors.backup.parse_times import parse_naive

# borg init --encryption modes that do not encrypt: "none" stores plaintext, "authenticated"
# (and "authenticated-blake2") only adds a MAC (borg init man page, "Encryption mode TLDR").
UNENCRYPTED_MODES = frozenset({"none", "authenticated", "authenticated-blake2"})


@dataclass(frozen=True)
class BorgArchive:
    """The newest archive borg listed."""

    name: str
    id: str
    time: datetime


@dataclass(frozen=True)
class BorgListing:
    """What one ``borg list --json`` shows about a repository."""

    latest: Optional[BorgArchive]
    encryption_mode: Optional[str]
    location: Optional[str]

    @property
    def encrypted(self) -> Optional[bool]:
        if self.encryption_mode is None:
            return None
        return self.encryption_mode not in UNENCRYPTED_MODES


def parse_list(text: str) -> BorgListing:
    """Parse ``borg list --json`` output; raises ``ValueError`` saying what is malformed."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"borg list output is not JSON: {err.msg} at char {err.pos}") from err
    if not isinstance(data, dict) or not isinstance(data.get("archives"), list):
        raise ValueError("borg list output has no archives list")
    latest: Optional[BorgArchive] = None
    for index, item in enumerate(data["archives"]):
        if not isinstance(item, dict):
            raise ValueError(f"borg archive #{index} is not an object")
        name = str(item.get("name") or item.get("archive") or "")
        # Borg 1.1 listed checkpoint archives (interrupted runs); they are not a finished backup.
        if ".checkpoint" in name:
            continue
        stamp = item.get("start") or item.get("time")
        if not isinstance(stamp, str):
            raise ValueError(f"borg archive {name!r} has no start time")
        archive = BorgArchive(name, str(item.get("id") or ""), parse_naive(stamp, timezone.utc))
        if latest is None or archive.time > latest.time:
            latest = archive
    encryption = _mapping(data.get("encryption"))
    repository = _mapping(data.get("repository"))
    mode = encryption.get("mode")
    location = repository.get("location")
    return BorgListing(
        latest,
        str(mode) if isinstance(mode, str) else None,
        str(location) if isinstance(location, str) else None,
    )


def _mapping(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


# (all of these substrings in stderr, reason template) in order; first match wins.
_FAILURES = (
    (("passcommand supplied in borg_passcommand failed",), "password file {password_file} could not be read: {last}"),
    (
        ("passphrase", "is incorrect"),
        "wrong password: borg could not open {repository} with the password in {password_file}",
    ),
    (("can not acquire a passphrase",), "repository {repository} is encrypted but no password_file is configured"),
    (("repository", "does not exist"), "repository does not exist: no borg repository at {repository}"),
    (("is not a valid repository",), "repository does not exist: {repository} is not a borg repository"),
    (
        ("was previously located at",),
        "repository {repository} was relocated since this node last saw it; confirm with borg as the agent's user",
    ),
    (
        ("read-only file system",),
        "borg could not write its cache and security files for {repository} ({read_only}): "
        "set borg_base_dir to a writable directory",
    ),
    (("failed to create/acquire the lock",), "repository {repository} is locked (a backup may be running): {last}"),
    (("connection closed by remote host",), "cannot reach repository {repository}: {remote}"),
)


def explain_failure(stderr: str, returncode: Optional[int], repository: str, password_file: str) -> str:
    """A reason a person can act on, from borg's stderr (borg 1.2 exits 2 for every error)."""
    lowered = stderr.lower()
    values = {
        "repository": repository,
        "password_file": password_file,
        "last": _last_line(stderr),
        "remote": _last_line(stderr, prefer="Remote:"),
        "read_only": _last_line(stderr, containing="read-only file system"),
    }
    for needles, template in _FAILURES:
        if all(needle in lowered for needle in needles):
            return template.format(**values)
    return f"borg exited with status {returncode}: {values['last']}"


def _last_line(text: str, prefer: str = "", containing: str = "") -> str:
    """The last line (of those starting with ``prefer`` or holding ``containing``, when any do)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    preferred = [
        line for line in lines if (prefer and line.startswith(prefer)) or (containing and containing in line.lower())
    ]
    lines = preferred or lines
    return lines[-1][:300] if lines else "no message"
