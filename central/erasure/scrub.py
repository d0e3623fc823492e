"""What erasure removes from evidence: usernames, home paths and process command lines.  Pure.

A removed value becomes the marker ``MARKER``.  The values are not hashed one by one: a hash of a
username is found again by trying names, which would undo the erasure.  What proves the erased
body is the one the centre made is recorded per report instead (``erased_sha256``, beside the
original ``body_sha256`` the chain commits to)."""

from __future__ import annotations

import json
import re
from typing import Any, Optional, Set

MARKER = "[erased]"
PERSONAL_FIELDS = frozenset(
    {
        # usernames (the fields agent/pseudonymise.py pseudonymises)
        "user",
        "users",
        "username",
        "owner",
        "login",
        "auid",
        # home directories and what may name a person
        "home",
        "gecos",
        # process command lines
        "cmdline",
        "command_line",
        "args",
        "argv",
    }
)
_HOME = re.compile(r"(/home/|/var/home/|/root/)[^/\s\"']+")


class Scrubber:
    """Erases personal values and remembers each one removed (``removed``), so the same names can
    then be taken out of what the centre derived from the evidence (findings' sentences,
    incidents' titles: ``in_text``)."""

    def __init__(self) -> None:
        self.removed: Set[str] = set()
        self.count = 0

    def _gone(self, value: Any) -> str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            text = str(value)
            if text and text != MARKER:
                self.removed.add(text)
        self.count += 1
        return MARKER

    def _field(self, value: Any) -> Any:
        if value is None or value in ("", MARKER):
            return value
        if isinstance(value, list):
            return [self._field(v) for v in value]
        if isinstance(value, dict):
            return {k: self._field(v) for k, v in value.items()}
        return self._gone(value)

    def _home(self, match: re.Match[str]) -> str:
        self._gone(match.group(0)[len(match.group(1)) :])
        return match.group(1) + MARKER

    def data(self, data: Any) -> Any:
        """A copy of ``data`` (parsed JSON) with personal fields and home paths erased."""
        if isinstance(data, dict):
            return {k: self._field(v) if k in PERSONAL_FIELDS else self.data(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.data(v) for v in data]
        if isinstance(data, str) and _HOME.search(data):
            return _HOME.sub(self._home, data)
        return data

    def report(self, body: bytes) -> bytes:
        """A report body with its evidence scrubbed (the envelope — ids, times, privacy — is kept),
        in the same canonical form."""
        report = json.loads(body)
        # twice: the second pass takes the names found anywhere in the report out of every other
        # place (a user private group named after its user, a name in a message)
        report["evidence"] = self.in_json(self.data(report.get("evidence", [])))
        return json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def in_text(self, text: Optional[str]) -> Optional[str]:
        """``text`` with every removed value in it replaced (longest first, whole words only)."""
        if not text or not self.removed:
            return text
        # not numbers (a user id 1000 erased from a field must not take every "1000" from the sentences)
        names = sorted((n for n in self.removed if len(n) >= 2 and not n.isdigit()), key=len, reverse=True)
        if not names:
            return text
        pattern = re.compile(r"(?<![\w.-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])")
        return pattern.sub(MARKER, text)

    def in_json(self, value: Any) -> Any:
        """A derived JSON value (a finding's observed value): fields and removed values erased."""
        value = self.data(value)
        if isinstance(value, str):
            return self.in_text(value)
        if isinstance(value, list):
            return [self.in_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.in_json(v) for k, v in value.items()}
        return value
