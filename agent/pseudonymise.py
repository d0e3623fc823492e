"""Pseudonymising personal data in evidence before it leaves the node (M13).

Usernames (in fields named ``user``, ``users``, ``username``, ``owner`` or ``login``), the
user part of home paths (``/home/<name>/…``) and of crontab paths (``/var/spool/cron/crontabs/<name>``,
RHEL's ``/var/spool/cron/<name>``), and the names after ``User`` in sshd's match contexts
(``Match User anna``, ``user anna from …``) are replaced by a keyed hash:
``u-`` and 12 hex digits of HMAC-SHA256 under the fleet's pseudonym key.  The same
person gets the same pseudonym on every node of the fleet, so evidence can still
be correlated, but the name cannot be read back without the key.  System
accounts (uid below 1000, e.g. root, www-data) are not personal data and are kept:
that a service runs as root is evidence.  Group names (fields ``group``, ``groups``) are kept,
except a group named after a person's account (Debian's user private group ``anna`` of user
``anna``), which gets that person's pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import pwd
import re
from dataclasses import replace
from typing import Any, Callable, Dict, Optional

from evidence.model import Evidence

USER_FIELDS = frozenset({"user", "users", "username", "owner", "login"})
GROUP_FIELDS = frozenset({"group", "groups"})
UID_MIN = 1000  # Debian's and RHEL's login.defs default
_HOME = re.compile(r"^(/home/|/var/home/)([^/]+)")
_CRONTAB = re.compile(r"^(/var/spool/cron/(?:crontabs/)?)([^/]+)$")
_SPOOL_DIRS = frozenset({"crontabs", "atjobs", "atspool"})
"""Debian's directories in /var/spool/cron, not crontabs of users."""
_MATCH_USER = re.compile(r"(\buser[ =]+)([^\s()]+)", re.IGNORECASE)
"""sshd's ``Match User a,b`` (sshd_config(5)) and ``-C user=a`` contexts (field ``context``)."""


def _system_account(name: str) -> bool:
    try:
        return pwd.getpwnam(name).pw_uid < UID_MIN
    except KeyError:
        return False


def _personal_account(name: str) -> bool:
    try:
        return pwd.getpwnam(name).pw_uid >= UID_MIN
    except KeyError:
        return False


class Pseudonymiser:
    def __init__(
        self,
        key: bytes,
        is_system: Callable[[str], bool] = _system_account,
        is_person: Callable[[str], bool] = _personal_account,
    ) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self.key = key
        self.is_system = is_system
        self.is_person = is_person
        """Whether a group name is also a person's account name (a user private group)."""
        self._cache: Dict[str, str] = {}

    def name(self, user: str) -> str:
        if user in self._cache:
            return self._cache[user]
        if self.is_system(user):
            result = user
        else:
            result = "u-" + hmac.new(self.key, user.encode("utf-8"), hashlib.sha256).hexdigest()[:12]
        self._cache[user] = result
        return result

    def _path(self, text: str) -> str:
        match = _HOME.match(text) or _CRONTAB.match(text)
        if not match or match.group(2) in _SPOOL_DIRS:
            return text
        return match.group(1) + self.name(match.group(2)) + text[match.end() :]

    def _pattern(self, names: str) -> str:
        """A comma-separated list of sshd user patterns: names pseudonymised, wildcards kept."""
        out = []
        for item in names.split(","):
            bare = item.lstrip("!")
            plain = bare and not any(c in bare for c in "*?[")
            out.append(item[: len(item) - len(bare)] + self.name(bare) if plain else item)
        return ",".join(out)

    def apply(self, value: Any, field: Optional[str] = None) -> Any:
        """A copy of ``value`` with usernames and home paths pseudonymised."""
        if isinstance(value, dict):  # keys may be paths too (file_integrity's summary by directory)
            return {self._path(k) if isinstance(k, str) else k: self.apply(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.apply(v, field) for v in value]
        if isinstance(value, str):
            if field in USER_FIELDS and value:
                return self.name(value)
            if field in GROUP_FIELDS and value and self.is_person(value):
                return self.name(value)
            if field == "context":
                return _MATCH_USER.sub(lambda m: m.group(1) + self._pattern(m.group(2)), value)
            return self._path(value)
        return value


def pseudonymised(record: Evidence, pseudonymiser: Pseudonymiser) -> Evidence:
    """``record`` with its observed facts pseudonymised."""
    return replace(record, observed=pseudonymiser.apply(dict(record.observed)))
